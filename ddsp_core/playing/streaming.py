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
traced once per block length.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from ddsp_core import effects, synths
from ddsp_core.core.convolution import fft_convolve, frequency_impulse_response
from ddsp_core.core.oscillators import harmonic_hops
from ddsp_core.core.units import float32


class StreamingError(ValueError):
    """The model cannot be streamed (its synthesizer is not harmonic + noise [+ reverb])."""


def compile_function(function):
    """`function` compiled for the Keras backend: tf.function, jax.jit, or as is."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
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


def noise_ir_size(noise, n_bands):
    """Length of the FilteredNoise FIR filters for `n_bands` magnitudes (odd)."""
    full_size = 2 * (n_bands - 1)
    window_size = noise.window_size if 0 < noise.window_size <= full_size else full_size
    return window_size if window_size % 2 == 1 else window_size - 1


class StreamingSynth:
    """A trained model as a stateful synthesizer: features in, audio out, any block size.

    Args:
        model: A built, restored `Autoencoder` (preprocessor, RnnFcDecoder with a GRU, and a
            ProcessorGroup of Harmonic, FilteredNoise, Add and optionally Reverb).
        hop_size: Audio samples per frame (sample_rate / frame_rate).
        batch_size: Voices rendered together.
        seed: Seed of the noise (uniform in [-1, 1), drawn in order, so the same seed gives
            the same noise whatever the block sizes).
    """

    def __init__(self, model, hop_size, batch_size=1, seed=0):
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
        self._controls_fn = compile_function(self._controls)
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
        model, parts = self.model, self.parts
        conditioning = model.preprocessor(features) if model.preprocessor is not None else dict(features)
        if model.encoder is not None:
            conditioning = model.encoder(conditioning)
        controls, gru_state = model.decoder(conditioning, initial_state=gru_state, return_state=True)
        outputs = {**conditioning, **controls}
        harmonic = parts.harmonic.get_controls(*[outputs[key] for key in parts.harmonic_keys])
        noise = parts.noise.get_controls(*[outputs[key] for key in parts.noise_keys])
        return {
            "f0_hz": harmonic["f0_hz"],
            "harmonic_amplitudes": harmonic["amplitudes"] * harmonic["harmonic_distribution"],
            "noise_magnitudes": noise["magnitudes"],
        }, gru_state

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
        harmonic, phase = harmonic_hops(f0_points, amplitude_points, self.hop_size, harmonic_method,
                                        self.sample_rate, initial_phase=state["phase"])
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

    def synthesize(self, controls, noise_gain=1.0):
        """Renders decoded controls; returns the samples now final (latency_samples late).

        Args:
            controls: Output of `controls` (or the same keys from elsewhere, e.g. a TFLite
                control model): f0_hz [batch, n_frames, 1], harmonic_amplitudes
                [batch, n_frames, n_harmonics], noise_magnitudes [batch, n_frames, n_bands].
            noise_gain: Scales the noise input (0 renders no new noise: `flush`).

        Returns:
            Audio, NumPy [batch, n_samples_final].
        """
        f0_hz = np.asarray(controls["f0_hz"], "float32")
        amplitudes = np.asarray(controls["harmonic_amplitudes"], "float32")
        magnitudes = np.asarray(controls["noise_magnitudes"], "float32")
        n_frames = f0_hz.shape[1]
        if self.synth_state is None:
            self.synth_state = self.initial_synth_state(f0_hz, amplitudes)
        # Drawn time-major, so that the noise does not depend on how the frames are cut into blocks.
        noise = self.rng.uniform(-1.0, 1.0, (n_frames * self.hop_size, self.batch_size)).T.astype("float32")
        state, audio = self._synth_fn(self.synth_state, f0_hz, amplitudes, magnitudes, noise * noise_gain)
        self.synth_state = {key: ops.convert_to_numpy(value) for key, value in state.items()}
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


def render(synth, features, chunk_frames=250, progress=None):
    """Renders a whole feature sequence through a `StreamingSynth`, in chunks (bounded memory).

    Args:
        synth: A `StreamingSynth` (reset first).
        features: {'f0_hz': [batch, n_frames], level key: [batch, n_frames]} (NumPy).
        chunk_frames: Frames per block; memory grows with it, not with the input's length.
        progress: Optional callable(frames_done, n_frames).

    Returns:
        Audio, NumPy float32 [batch, n_frames * hop_size].
    """
    synth.reset()
    n_frames = next(iter(features.values())).shape[1]
    pieces = []
    for start in range(0, n_frames, chunk_frames):
        block = {key: value[:, start:start + chunk_frames] for key, value in features.items()}
        pieces.append(synth.process(block))
        if progress is not None:
            progress(min(start + chunk_frames, n_frames), n_frames)
    pieces.append(synth.flush())
    return np.concatenate(pieces, axis=1)[:, :n_frames * synth.hop_size]
