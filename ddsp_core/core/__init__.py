"""Differentiable DSP building blocks (the `ddsp.core` namespace of magenta's ddsp).

Split by topic: `units` (conversions, scale functions), `frequencies` (network outputs
to Hz), `resampling` (frame rate to audio rate), `oscillators` (phase, sinusoids, harmonic
synthesis), `sinusoidal` (harmonic <-> sinusoidal controls), `wavetables`, `framing` and
`convolution` (FFT convolution, FIR filters from magnitude responses), `filters`
(windowed sinc), `arrays` (pad, diff, crop) and `nesting` (nested dicts of tensors).
Everything is written with keras.ops, so it runs on Keras' TensorFlow and JAX backends.
"""

import gin

from ddsp_core.core.arrays import center_crop, diff, gradient_reversal, nan_to_num, pad_axis
from ddsp_core.core.convolution import (apply_window_to_impulse_response, crop_and_compensate_delay, fft_convolve,
                                        frequency_filter, frequency_impulse_response, get_fft_size)
from ddsp_core.core.delay import variable_length_delay
from ddsp_core.core.filters import sinc, sinc_filter, sinc_impulse_response
from ddsp_core.core.framing import frame, overlap_and_add
from ddsp_core.core.frequencies import frequencies_critical_bands, frequencies_sigmoid, frequencies_softmax
from ddsp_core.core.nesting import (copy_if_tf_function, leaf_key, make_iterable, map_shape, nested_keys,
                                    nested_lookup, to_dict)
from ddsp_core.core.oscillators import (accumulate_cycles, angular_cumsum, get_harmonic_frequencies, harmonic_hops,
                                        harmonic_oscillator_bank, harmonic_synthesis, normalize_harmonics, oscillator_bank,
                                        remove_above_nyquist, streaming_harmonic_synthesis)
from ddsp_core.core.resampling import resample, upsample_with_windows
from ddsp_core.core.sinusoidal import harmonic_to_sinusoidal, sinusoidal_to_harmonic
from ddsp_core.core.units import (DB_RANGE, amplitude_to_db, bark_to_hz, db_to_amplitude, db_to_power, exp_sigmoid,
                                  float32, hz_to_bark, hz_to_erb, hz_to_mel, hz_to_midi, hz_to_unit, log10,
                                  log_scale, logb, mel_to_hz, midi_to_hz, midi_to_unit, power_to_db, safe_divide,
                                  safe_log, soft_limit, sym_exp_sigmoid, unit_to_hz, unit_to_midi)
from ddsp_core.core.wavetables import harmonic_distribution_to_wavetable, linear_lookup, wavetable_synthesis

# magenta's name for float32 conversion.
tf_float32 = float32

# Functions gin files refer to, e.g. `Harmonic.scale_fn = @core.exp_sigmoid`.
for _function in (exp_sigmoid, sym_exp_sigmoid, frequencies_softmax, frequencies_sigmoid, frequencies_critical_bands,
                  amplitude_to_db, db_to_amplitude, hz_to_midi, midi_to_hz):
    gin.register(_function, module="ddsp_core.core")
del _function
