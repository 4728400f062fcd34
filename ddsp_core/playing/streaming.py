"""Frame-by-frame synthesis with carried state: audio rendered in blocks equals audio rendered at once.

A trained solo-instrument model is a recurrent decoder followed by a harmonic synth,
filtered noise and (optionally) a reverb. Each keeps something from one block of frames to
the next:
    decoder         the GRU state                         [batch, rnn_channels]
    harmonic synth  the last frame's f0 and harmonic amplitudes, and the fundamental's phase
    filtered noise  the tail of the last frames' FIR outputs (ir_size - 1 samples)
    reverb          the tail of the convolution (reverb_length - 1 samples)
`StreamingSynth` carries all of it, so `process` can be called with any number of frames at
a time (one frame per call for a plugin, seconds for offline rendering) and the samples it
returns, followed by `flush()`, are the samples the model's own synthesis renders for the
whole signal (the same noise given; tests/playing/test_streaming.py checks it).

Latency: hop i of the harmonic synth interpolates from frame i to frame i + 1, and the
noise filter is linear-phase (its centre is (ir_size - 1) // 2 samples late), so a sample
is final only once later frames are in: `latency_samples` = max(hop, (ir_size - 1) // 2).
`process` returns only final samples; `flush` renders the rest with the last frame held (as
the whole-signal synthesis does) and no new noise.

The per-block work is two compiled functions (tf.function on TensorFlow, jax.jit on JAX),
traced once per block length. `jit_compile=True` (offline rendering, TensorFlow) decodes
faster on blocks of hundreds of frames: the GRU's time loop runs under XLA, and the decoder
work that depends on one input alone is done once per distinct input value
(`_controls_per_value`), and the harmonic synth computes only the harmonics below Nyquist
somewhere in the block (`audible_harmonic_hops`); compiling costs more per block length, and
one frame per call is no faster, so `render` feeds blocks of one length per rendering (the
last one padded; `block_frames` fits the length to the input from a few steps) and a synth
compiles once per such length. A plugin's path (`process`, jit_compile=False) is unchanged.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from ddsp_core import effects, synths
from ddsp_core.core.convolution import fft_convolve, frequency_impulse_response
from ddsp_core.core.oscillators import INTERPOLATION_CURVES, TWO_PI, _wrap_cycles, accumulate_cycles, harmonic_hops
from ddsp_core.core.resampling import _interpolate_between_frames
from ddsp_core.core.units import float32
from ddsp_core.models.decoders import RnnFcDecoder
from ddsp_core.models.nn import FastGRU, _gru_states, split_to_dict


CONTROL_KEYS = ("f0_hz", "harmonic_amplitudes", "noise_magnitudes")


class StreamingError(ValueError):
    """The model cannot be streamed (its synthesizer is not harmonic + noise [+ reverb])."""


def compile_function(function, jit_compile=False):
    """`function` compiled for the Keras backend: tf.function (with XLA if `jit_compile`),
    jax.jit (always XLA), or as is."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=bool(jit_compile))
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function


@dataclasses.dataclass(frozen=True)
class SynthParts:
    """The processors of a model's synthesizer, and the control keys each reads."""

    harmonic: synths.Harmonic
    harmonic_keys: tuple
    noise: synths.FilteredNoise
    noise_keys: tuple
    reverb: effects.Reverb | None


def synth_parts(model):
    """Finds the harmonic synth, the filtered noise and the optional reverb of a model's DAG.

    Raises:
        StreamingError: the DAG has other processors, or lacks one of the two synths.
    """
    harmonic = noise = reverb = None
    harmonic_keys = noise_keys = ()
    for processor, keys in model.processor_group.dag:
        if isinstance(processor, synths.Harmonic):
            harmonic, harmonic_keys = processor, tuple(keys)
        elif isinstance(processor, synths.FilteredNoise):
            noise, noise_keys = processor, tuple(keys)
        elif type(processor) is effects.Reverb:
            reverb = processor
        elif isinstance(processor, effects.Reverb):  # ExpDecayReverb, FilteredNoiseReverb: an IR made per call.
            raise StreamingError(f"Streaming synthesis supports the learned-impulse-response Reverb; this model's "
                                 f"ProcessorGroup has {type(processor).__name__} ('{processor.name}'), whose "
                                 "impulse response is made at each call: playing such a model is not supported yet.")
        elif type(processor).__name__ != "Add":
            raise StreamingError(f"Streaming synthesis supports Harmonic, FilteredNoise, Add and Reverb processors; "
                                 f"this model's ProcessorGroup also has {type(processor).__name__} "
                                 f"('{processor.name}').")
    if harmonic is None or noise is None:
        raise StreamingError("Streaming synthesis needs a Harmonic and a FilteredNoise processor in the model's "
                             "ProcessorGroup (models/solo_instrument.gin has both).")
    if reverb is not None and reverb._ir is None:
        raise StreamingError("Streaming synthesis supports a trainable Reverb (its impulse response is in the "
                             "checkpoint) but not one given at call time.")
    return SynthParts(harmonic, harmonic_keys, noise, noise_keys, reverb)


def shares_input_values(model):
    """Whether `StreamingSynth._controls_per_value` can decode this model: TensorFlow, no
    encoder, an RnnFcDecoder in float32 whose GRU takes FastGRU's path."""
    decoder = getattr(model, "decoder", None)
    return (keras.backend.backend() == "tensorflow" and getattr(model, "encoder", None) is None
            and model.preprocessor is not None and isinstance(decoder, RnnFcDecoder)
            and decoder.precision == "float32" and isinstance(decoder.rnn, FastGRU)
            and decoder.rnn._fast_path_ok(None, training=False))


def noise_ir_size(noise, n_bands):
    """Length of the FilteredNoise FIR filters for `n_bands` magnitudes (odd)."""
    full_size = 2 * (n_bands - 1)
    window_size = noise.window_size if 0 < noise.window_size <= full_size else full_size
    return window_size if window_size % 2 == 1 else window_size - 1


def _layers_support_xla(model):
    """Whether every layer of `model` says it can run under XLA (Keras' `supports_jit`; its GRU says
    no where cuDNN would run it)."""
    return all(getattr(layer, "supports_jit", True) for layer in model._flatten_layers())


def audible_harmonic_hops(f0_points, amplitude_points, hop_size, method="window", sample_rate=16000,
                          initial_phase=None):
    """`harmonic_hops` for offline rendering on TensorFlow: the same audio, less work per sample.

    `harmonic_hops` computes sin(2 pi k phase) for every harmonic k at every sample, and zeroes
    those at or above Nyquist. Here only harmonics 1..n_kept are computed, n_kept being the
    highest harmonic below Nyquist somewhere in the block (at its lowest f0): a melody around
    300 Hz at 16 kHz keeps 26 of 60. The per-sample Nyquist mask is applied only if a kept
    harmonic reaches Nyquist within the block (a glide across nyquist / k), and the harmonic
    phases are one outer product (a matmul, cheaper on the CPU than a broadcast multiply). The
    phase arithmetic is the same as `harmonic_hops`'s (cycles, wrapped, then radians), so the
    sines are the same float32 numbers; the sums differ only in their order.

    Arguments (shapes, units) and results are `harmonic_hops`'s.
    """
    import tensorflow as tf

    f0_points, amplitude_points = float32(f0_points), float32(amplitude_points)
    n_hops, n_harmonics = amplitude_points.shape[1] - 1, amplitude_points.shape[2]
    nyquist = sample_rate / 2.0
    f0_envelope = _interpolate_between_frames(f0_points, hop_size, np.arange(hop_size) / hop_size)  # [b, n, 1]
    f0_phase = accumulate_cycles(f0_envelope * (1.0 / sample_rate))  # [batch, n_samples, 1], cycles
    if initial_phase is not None:
        f0_phase = _wrap_cycles(f0_phase + float32(initial_phase)[:, None, :])
    numbers = tf.range(1.0, n_harmonics + 1.0)  # [n_harmonics]
    # Harmonic k is silent throughout iff k * f0 >= Nyquist at the lowest f0 (rounding is monotonic).
    n_kept = tf.reduce_sum(tf.cast(tf.reduce_min(f0_envelope) * numbers < nyquist, "int32"))
    numbers = numbers[None, :n_kept]  # [1, n_kept]
    f0_column = tf.reshape(f0_envelope, (-1, 1))  # [batch * n_samples, 1]
    phases = tf.matmul(tf.reshape(f0_phase, (-1, 1)), numbers)  # [batch * n_samples, n_kept], cycles
    sines = tf.sin(TWO_PI * _wrap_cycles(phases))

    def masked():  # Zero where k * f0 >= Nyquist, as `harmonic_hops` does.
        return sines * tf.cast(tf.matmul(f0_column, numbers) < nyquist, "float32")

    all_below = tf.reduce_max(f0_envelope) * tf.cast(n_kept, "float32") < nyquist
    sines = tf.cond(all_below, lambda: sines, masked)
    sines = tf.reshape(sines, (-1, n_hops, hop_size, n_kept))
    kept = amplitude_points[..., :n_kept]
    ends = tf.stack([kept[:, :-1], kept[:, 1:]], axis=-1)  # [batch, n_hops, n_kept, 2]
    per_end = tf.matmul(sines, ends)  # [batch, n_hops, hop, 2]
    curve = INTERPOLATION_CURVES[method](hop_size).astype("float32")
    weights = tf.constant(np.stack([1.0 - curve, curve], axis=-1).astype("float32"))  # [hop, 2]
    audio = tf.reduce_sum(per_end * weights, axis=-1)  # [batch, n_hops, hop]
    return tf.reshape(audio, (-1, n_hops * hop_size)), f0_phase[:, -1, :]


class StreamingSynth:
    """A trained model as a stateful synthesizer: features in, audio out, any block size.

    Args:
        model: A built, restored `Autoencoder` (preprocessor, RnnFcDecoder with a GRU, and a
            ProcessorGroup of Harmonic, FilteredNoise, Add and optionally Reverb).
        hop_size: Audio samples per frame (sample_rate / frame_rate).
        batch_size: Voices rendered together.
        seed: Seed of the noise (uniform in [-1, 1), drawn in order, so the same seed gives
            the same noise whatever the block sizes).
        jit_compile: The offline decoder on TensorFlow (see the module docstring): for long
            blocks of one length, not for a plugin's one frame per call. JAX always compiles
            with XLA.
    """

    def __init__(self, model, hop_size, batch_size=1, seed=0, jit_compile=False):
        self.model = model
        self.parts = synth_parts(model)
        self.hop_size = int(hop_size)
        self.batch_size = int(batch_size)
        self.sample_rate = self.parts.harmonic.sample_rate
        splits = dict(model.decoder.output_splits)
        self.n_bands = splits[self.parts.noise_keys[0]]
        self.ir_size = noise_ir_size(self.parts.noise, self.n_bands)
        self.noise_delay = (self.ir_size - 1) // 2
        self.latency_samples = max(self.hop_size, self.noise_delay)
        self.rnn_channels = int(model.decoder.rnn.units)
        self.seed = seed
        self.jit_compile = bool(jit_compile)
        self.per_value = self.jit_compile and shares_input_values(model)
        if self.per_value:  # A plain tf.function (distinct values vary in number), its time loop in XLA.
            self._recurrence_fn = compile_function(_gru_states, jit_compile=True)
            self._controls_fn = compile_function(self._controls_per_value)
        else:  # XLA only where every layer can take it: Keras' GRU on a GPU runs cuDNN, which XLA cannot.
            self._controls_fn = compile_function(self._controls, jit_compile and _layers_support_xla(model))
        # Offline, the harmonic synth computes only the harmonics below Nyquist (`audible_harmonic_hops`).
        self.audible_only = self.jit_compile and keras.backend.backend() == "tensorflow"
        # The synth stays a plain tf.function: under XLA it measured slower on melodies (bench_play).
        self._synth_fn = compile_function(self._synthesize)
        self.reset()

    # ------------------------------------------------------------------------------------
    # state

    def reset(self):
        """Back to silence: zero GRU state, no previous frame, empty tails, fresh noise."""
        batch = self.batch_size
        self.gru_state = np.zeros((batch, self.rnn_channels), "float32")
        self.rng = np.random.default_rng(self.seed)
        self.synth_state = None  # Set by the first block (it needs the first frame).
        self.to_skip = self.latency_samples  # Samples before time 0.
        self.frames_in = 0

    def initial_synth_state(self, f0_hz, harmonic_amplitudes):
        """State before the first frame: a virtual hop ending at time 0 holding frame 0.

        Its phase starts so that the fundamental's phase is 0 at time 0, as in the
        whole-signal synthesis; its audio lands before time 0 and is dropped. Built with
        keras.ops, so it also runs inside a traced function (the SavedModel's).

        Args:
            f0_hz: The first block's f0, [batch, n_frames, 1].
            harmonic_amplitudes: Its harmonic amplitudes, [batch, n_frames, n_harmonics].
        """
        batch = self.batch_size
        f0_first = float32(f0_hz)[:, :1]  # [batch, 1, 1]
        state = {
            "f0": f0_first,
            "amplitudes": float32(harmonic_amplitudes)[:, :1],
            "phase": ops.mod(-self.hop_size * (1.0 / self.sample_rate) * f0_first[:, 0], 1.0),  # [batch, 1] cycles
            "noise_tail": ops.zeros((batch, self.ir_size - 1)),
            "harmonic_delay": ops.zeros((batch, self.latency_samples - self.hop_size)),
            "noise_delay": ops.zeros((batch, self.latency_samples - self.noise_delay)),
            # Samples of the stream still before time 0 (the virtual hop's): silenced, so that
            # they do not reach the reverb.
            "before_start": ops.full((1, 1), float(self.latency_samples)),
        }
        if self.parts.reverb is not None:
            state["reverb_tail"] = ops.zeros((batch, self.parts.reverb.reverb_length - 1))
        return state

    # ------------------------------------------------------------------------------------
    # compiled steps

    def _controls(self, features, gru_state):
        """Features of a block -> synthesizer controls and the new GRU state.

        Args:
            features: {'f0_hz': [batch, n_frames], level key: [batch, n_frames]}.
            gru_state: [batch, rnn_channels].

        Returns:
            ({'f0_hz' [batch, n_frames, 1], 'harmonic_amplitudes' [batch, n_frames, n_harmonics]
            (linear, amplitude x normalized distribution), 'noise_magnitudes'
            [batch, n_frames, n_bands] (linear)}, gru_state).
        """
        model = self.model
        conditioning = model.preprocessor(features) if model.preprocessor is not None else dict(features)
        if model.encoder is not None:
            conditioning = model.encoder(conditioning)
        controls, gru_state = model.decoder(conditioning, initial_state=gru_state, return_state=True)
        return self._synth_controls(conditioning, controls), gru_state

    def _controls_per_value(self, features, gru_state):
        """`_controls` with the work that depends on one input alone done once per distinct value.

        The decoder's input stacks, and their parts of the GRU's input projection and of the
        output stack's first layer, each depend on one input (a frame's f0, or its level). A
        MIDI phrase holds values over many frames (the built-in melody at 250 frames/s: 2330
        frames, 132 distinct f0 and 312 distinct levels), so those parts are computed per
        distinct value of the block and gathered; the GRU's time loop (XLA) and the rest of the
        output stack run per frame. Equal to `_controls` within float32 round-off (the
        projections are summed in another order). TensorFlow only (tf.unique).
        """
        import tensorflow as tf

        model, decoder = self.model, self.model.decoder
        conditioning = model.preprocessor(features)
        cell, first = decoder.rnn.cell, decoder.output_stack.denses[0]
        units = int(cell.units)
        batch, n_frames = tf.shape(features["f0_hz"])[0], tf.shape(features["f0_hz"])[1]
        projections, offset = 0.0, 0
        for key, stack in zip(decoder.input_keys, decoder.input_stacks):
            distinct, index = tf.unique(tf.reshape(conditioning[key], [-1]))  # [n_distinct], [batch * n_frames]
            rows = stack(distinct[:, None])  # [n_distinct, ch]
            width = rows.shape[-1]
            # This stack's rows of the GRU's input kernel and of the output stack's first kernel (after the GRU's).
            kernel = ops.concatenate([cell.kernel[offset:offset + width],
                                      first.kernel[units + offset:units + offset + width]], axis=1)
            projections = projections + tf.gather(ops.matmul(rows, kernel), index)  # [batch * n_frames, 3 units + ch]
            offset += width
        x_proj = ops.reshape(projections[:, :3 * units] + cell.bias[0], (batch, n_frames, 3 * units))
        # Casts make tensors of the variables (a nested tf.function takes no Keras variables).
        states = self._recurrence_fn(ops.transpose(x_proj, (1, 0, 2)), ops.cast(cell.recurrent_kernel, "float32"),
                                     ops.cast(cell.bias[1], "float32"), gru_state)  # [n_frames, batch, units]
        h = ops.reshape(ops.transpose(states, (1, 0, 2)), (-1, units))  # [batch * n_frames, units]
        x = ops.matmul(h, first.kernel[:units]) + projections[:, 3 * units:] + first.bias
        slope = decoder.output_stack.negative_slope
        x = ops.leaky_relu(decoder.output_stack.norms[0](x), negative_slope=slope)
        for dense, norm in zip(decoder.output_stack.denses[1:], decoder.output_stack.norms[1:]):
            x = ops.leaky_relu(norm(dense(x)), negative_slope=slope)
        x = ops.reshape(decoder.dense_out(x), (batch, n_frames, -1))
        return self._synth_controls(conditioning, split_to_dict(x, decoder.output_splits)), states[-1]

    def _synth_controls(self, conditioning, decoded):
        """The harmonic and noise controls from the conditioning and the decoder's outputs."""
        parts = self.parts
        outputs = {**conditioning, **decoded}
        harmonic = parts.harmonic.get_controls(*[outputs[key] for key in parts.harmonic_keys])
        noise = parts.noise.get_controls(*[outputs[key] for key in parts.noise_keys])
        return {
            "f0_hz": harmonic["f0_hz"],
            "harmonic_amplitudes": harmonic["amplitudes"] * harmonic["harmonic_distribution"],
            "noise_magnitudes": noise["magnitudes"],
        }

    def _synthesize(self, state, f0_hz, harmonic_amplitudes, noise_magnitudes, noise):
        """Audio of a block of frames, and the state after it.

        Args:
            state: The carried state (see `initial_synth_state`).
            f0_hz: [batch, n_frames, 1]; harmonic_amplitudes: [batch, n_frames, n_harmonics];
            noise_magnitudes: [batch, n_frames, n_bands]; noise: [batch, n_frames * hop].

        Returns:
            (new state, audio [batch, n_frames * hop]): the block's samples, latency_samples late.
        """
        n_samples = noise.shape[1]
        harmonic_method = self.parts.harmonic.amp_resample_method
        f0_points = ops.concatenate([state["f0"], f0_hz], axis=1)  # [batch, n_frames + 1, 1]
        amplitude_points = ops.concatenate([state["amplitudes"], harmonic_amplitudes], axis=1)
        hops = audible_harmonic_hops if self.audible_only else harmonic_hops
        harmonic, phase = hops(f0_points, amplitude_points, self.hop_size, harmonic_method, self.sample_rate,
                               initial_phase=state["phase"])
        # Each frame's noise through its FIR filter; the filter outputs overlap by ir_size - 1.
        impulse_responses = frequency_impulse_response(noise_magnitudes, window_size=self.ir_size)
        filtered = fft_convolve(noise, impulse_responses, padding="valid", delay_compensation=0)
        tail_size = self.ir_size - 1
        filtered = ops.concatenate([filtered[:, :tail_size] + state["noise_tail"], filtered[:, tail_size:]], axis=1)
        # Align both to the stream's latency: harmonic audio is one hop late, noise noise_delay early.
        harmonic = ops.concatenate([state["harmonic_delay"], harmonic], axis=1)
        noise_out = ops.concatenate([state["noise_delay"], filtered[:, :n_samples]], axis=1)
        started = ops.cast(ops.arange(n_samples, dtype="float32")[None, :] >= state["before_start"], "float32")
        dry = (harmonic[:, :n_samples] + noise_out[:, :n_samples]) * started
        new_state = {
            "before_start": ops.maximum(state["before_start"] - n_samples, 0.0),
            "f0": f0_hz[:, -1:], "amplitudes": harmonic_amplitudes[:, -1:], "phase": phase,
            "noise_tail": filtered[:, n_samples:],
            "harmonic_delay": harmonic[:, n_samples:], "noise_delay": noise_out[:, n_samples:],
        }
        audio = dry
        reverb = self.parts.reverb
        if reverb is not None:
            ir = effects.Reverb.wet_impulse_response(reverb.get_controls(dry)["ir"])
            wet = fft_convolve(dry, ir, padding="valid", delay_compensation=0)  # [batch, n + L - 1]
            reverb_tail = state["reverb_tail"]
            tail_size = reverb_tail.shape[1]
            head = wet[:, :tail_size] + reverb_tail
            wet = ops.concatenate([head, wet[:, tail_size:]], axis=1)
            new_state["reverb_tail"] = wet[:, n_samples:]
            audio = wet[:, :n_samples] + dry if reverb.add_dry else wet[:, :n_samples]
        return new_state, audio

    # ------------------------------------------------------------------------------------
    # public API

    def controls(self, features):
        """Decodes a block of features, advancing the GRU state.

        Args:
            features: {'f0_hz': [batch, n_frames], and the model's level feature
                ('loudness_db' or 'power_db'): [batch, n_frames]}, NumPy or tensors.

        Returns:
            {'f0_hz', 'harmonic_amplitudes', 'noise_magnitudes'} as NumPy arrays
            [batch, n_frames, ...].
        """
        features = {key: np.asarray(value, "float32") for key, value in features.items()}
        controls, gru_state = self._controls_fn(features, self.gru_state)
        self.gru_state = ops.convert_to_numpy(gru_state)
        return {key: ops.convert_to_numpy(value) for key, value in controls.items()}

    def synthesize(self, controls, noise_gain=1.0, noise_frames=None):
        """Renders decoded controls; returns the samples now final (latency_samples late).

        Args:
            controls: Output of `controls` (or the same keys from elsewhere, e.g. a TFLite
                control model): f0_hz [batch, n_frames, 1], harmonic_amplitudes
                [batch, n_frames, n_harmonics], noise_magnitudes [batch, n_frames, n_bands].
            noise_gain: Scales the noise input (0 renders no new noise: `flush`).
            noise_frames: New noise under the first `noise_frames` frames only, none under
                the rest (a padded last block, see `render`); None: all frames.

        Returns:
            Audio, NumPy [batch, n_samples_final].
        """
        controls = {key: np.asarray(controls[key], "float32") for key in CONTROL_KEYS}
        audio = self._synthesize_block(controls, noise_gain, noise_frames)
        self.synth_state = {key: ops.convert_to_numpy(value) for key, value in self.synth_state.items()}
        return audio

    def _synthesize_block(self, controls, noise_gain=1.0, noise_frames=None):
        """`synthesize` on float32 controls as they are (`render` passes the decoder's tensors),
        keeping the new state as the compiled function returns it (no NumPy round trip)."""
        f0_hz, amplitudes, magnitudes = (controls[key] for key in CONTROL_KEYS)
        n_frames = f0_hz.shape[1]
        noise_frames = n_frames if noise_frames is None else int(noise_frames)
        if self.synth_state is None:
            self.synth_state = self.initial_synth_state(f0_hz, amplitudes)
        # Drawn time-major, so that the noise does not depend on how the frames are cut into blocks.
        noise = np.zeros((self.batch_size, n_frames * self.hop_size), "float32")
        drawn = self.rng.uniform(-1.0, 1.0, (noise_frames * self.hop_size, self.batch_size)).T
        noise[:, :drawn.shape[1]] = drawn * noise_gain
        self.synth_state, audio = self._synth_fn(self.synth_state, f0_hz, amplitudes, magnitudes, noise)
        audio = ops.convert_to_numpy(audio)
        self.frames_in += n_frames
        if self.to_skip:
            skipped = min(self.to_skip, audio.shape[1])
            audio, self.to_skip = audio[:, skipped:], self.to_skip - skipped
        return audio

    def process(self, features):
        """Features of the next frames -> the audio samples now final, NumPy [batch, n_samples].

        Any number of frames per call; after the first `latency_samples`, each call returns
        n_frames * hop_size samples.
        """
        return self.synthesize(self.controls(features))

    def flush(self):
        """The samples still pending (the last frame held, no new noise); then `reset` to reuse.

        Returns:
            NumPy [batch, latency_samples] (fewer if less than that was rendered).
        """
        if self.synth_state is None:
            return np.zeros((self.batch_size, 0), "float32")
        pending = self.frames_in * self.hop_size - self._samples_out_so_far()
        n_frames = -(-(pending + self.to_skip) // self.hop_size)
        held = {key: np.repeat(self.synth_state[key_state][:, -1:], n_frames, axis=1)
                for key, key_state in (("f0_hz", "f0"), ("harmonic_amplitudes", "amplitudes"))}
        held["noise_magnitudes"] = np.zeros((self.batch_size, n_frames, self.n_bands), "float32")
        frames_in = self.frames_in
        audio = self.synthesize(held, noise_gain=0.0)
        self.frames_in = frames_in
        return audio[:, :pending]

    def _samples_out_so_far(self):
        """Samples returned since `reset`: everything rendered but the latency."""
        return max(0, self.frames_in * self.hop_size - self.latency_samples)


# Block lengths are multiples of chunk_frames // BLOCK_STEPS: at most BLOCK_STEPS compiled lengths
# per synth and maximum block length, each block at most that much longer than needed.
BLOCK_STEPS = 20


def block_frames(n_frames, chunk_frames, step=None):
    """Frames per block to render `n_frames` (the input and the frames pending after it) in
    blocks of one length of at most `chunk_frames`, as few as possible, padded the least.

    The block length is ceil(n_frames / n_blocks) rounded up to a multiple of `step`
    (default chunk_frames // BLOCK_STEPS), so that nearby lengths share a compiled shape:
    9.3 s at 50 frames/s (467 frames) in blocks of at most 100 renders 5 x 95 frames, where
    5 x 100 pads 7%.
    """
    chunk_frames = max(1, int(chunk_frames))
    step = max(1, chunk_frames // BLOCK_STEPS) if step is None else int(step)
    n_blocks = -(-n_frames // chunk_frames)
    return min(chunk_frames, -(-(-(-n_frames // n_blocks)) // step) * step)


def render(synth, features, chunk_frames=250, progress=None, fit_blocks=True):
    """Renders a whole feature sequence through a `StreamingSynth`, in blocks of one length.

    Equals `process` over the frames in any cut, then `flush`: every block has the same
    length (`block_frames`: at most `chunk_frames`, fitted to the input), the last one padded
    with the last frame held and no new noise (what `flush` renders), so the compiled
    functions see one block length per rendering length; blocks after the input's end skip
    the decoder.

    Args:
        synth: A `StreamingSynth` (it is reset first).
        features: {'f0_hz': [batch, n_frames], level key: [batch, n_frames]} (NumPy).
        chunk_frames: Most frames per block; memory grows with it, not with the input's length.
        progress: Optional callable(frames_done, n_frames).
        fit_blocks: False: blocks of `chunk_frames` exactly (the rendering before
            `block_frames`; benchmarks/bench_play.py times it).

    Returns:
        Audio, NumPy float32 [batch, n_frames * hop_size].
    """
    synth.reset()
    features = {key: np.asarray(value, "float32") for key, value in features.items()}
    n_frames = next(iter(features.values())).shape[1]
    if n_frames == 0:
        return np.zeros((synth.batch_size, 0), "float32")
    # The input, then its last frame held until the samples still pending after it are out.
    n_needed = n_frames + -(-synth.latency_samples // synth.hop_size)
    chunk_frames = block_frames(n_needed, chunk_frames) if fit_blocks else max(1, int(chunk_frames))
    n_blocks = -(-n_needed // chunk_frames)
    pad = ((0, 0), (0, n_blocks * chunk_frames - n_frames))
    padded = {key: np.pad(value, pad, mode="edge") for key, value in features.items()}  # [batch, n_blocks * chunk]
    pieces = []
    for start in range(0, n_blocks * chunk_frames, chunk_frames):
        n_real = min(max(n_frames - start, 0), chunk_frames)
        if n_real:  # Decoded controls and states stay tensors between the compiled functions.
            block = {key: value[:, start:start + chunk_frames] for key, value in padded.items()}
            controls, synth.gru_state = synth._controls_fn(block, synth.gru_state)
        else:  # All held: the decoder is not needed.
            controls = {"noise_magnitudes": np.zeros((synth.batch_size, chunk_frames, synth.n_bands), "float32")}
        if n_real < chunk_frames:
            controls = {key: ops.convert_to_numpy(value) for key, value in controls.items()}
            for key, state_key in (("f0_hz", "f0"), ("harmonic_amplitudes", "amplitudes")):
                # The last real frame, from this block or (none in it) from the synth's state: [batch, 1, ...].
                held = controls[key][:, n_real - 1:n_real] if n_real else synth.synth_state[state_key]
                last = ops.convert_to_numpy(held)
                head = controls[key][:, :n_real] if n_real else last[:, :0]
                controls[key] = np.concatenate([head, np.repeat(last, chunk_frames - n_real, axis=1)], axis=1)
        pieces.append(synth._synthesize_block(controls, noise_frames=n_real))
        if progress is not None and n_real:
            progress(start + n_real, n_frames)
    return np.concatenate(pieces, axis=1)[:, :n_frames * synth.hop_size]
