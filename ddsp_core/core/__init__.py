"""Differentiable DSP building blocks (the `ddsp.core` namespace of magenta's ddsp).

Split by topic: `units` (conversions, scale functions), `resampling` (frame rate to
audio rate), `oscillators` (phase, sinusoids, harmonic synthesis), `framing` and
`convolution` (FFT convolution, FIR filters from magnitude responses). Everything is
written with keras.ops, so it runs on Keras' TensorFlow and JAX backends.
"""

import gin

from ddsp_core.core.convolution import (crop_and_compensate_delay, fft_convolve, frequency_filter,
                                        frequency_impulse_response, get_fft_size)
from ddsp_core.core.framing import frame, overlap_and_add
from ddsp_core.core.oscillators import (accumulate_cycles, angular_cumsum, get_harmonic_frequencies, harmonic_hops,
                                        harmonic_oscillator_bank, harmonic_synthesis, normalize_harmonics, oscillator_bank,
                                        remove_above_nyquist)
from ddsp_core.core.resampling import resample, upsample_with_windows
from ddsp_core.core.units import (DB_RANGE, amplitude_to_db, db_to_amplitude, db_to_power, exp_sigmoid,
                                  float32, hz_to_midi, hz_to_unit, log10, midi_to_hz, midi_to_unit,
                                  power_to_db, safe_divide, safe_log, unit_to_hz, unit_to_midi)

# magenta's name for float32 conversion.
tf_float32 = float32

# Functions gin files refer to, e.g. `Harmonic.scale_fn = @core.exp_sigmoid`.
for _function in (exp_sigmoid, amplitude_to_db, db_to_amplitude, hz_to_midi, midi_to_hz):
    gin.register(_function, module="ddsp_core.core")
del _function
