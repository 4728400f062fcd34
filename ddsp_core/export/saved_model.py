"""The model as a TensorFlow SavedModel for serving: f0 and level curves in, audio out.

The SavedModel has one signature, `serving_default`:

    inputs   f0_hz                     [1, n_frames] float32  fundamental frequency (Hz)
             loudness_db or power_db   [1, n_frames] float32  the level feature the model was
                                                              trained on (see metadata.json's
                                                              level_feature), in dB
    outputs  audio                     [1, n_frames * hop_size] float32, at the model's sample rate

n_frames is fixed at export (`ddsp_export --serving_seconds`, 4 s by default: 1000 frames at
250 frames/s, 200 at 50): the DSP code needs static shapes. Clients pad (hold the last
frame, or use a quiet level) or cut their curves to that length, and split longer inputs.

TensorFlow Serving and Vertex AI prediction serve it as it is. A REST request has one
instance (the batch is 1), each input a list of n_frames values:

    {"instances": [{"f0_hz": [440.0, ...], "loudness_db": [-30.0, ...]}]}

and the answer is {"predictions": [[sample, ...]]} (one list of n_frames * hop_size samples).

The audio is the model's own synthesis (the decoder from a zero state, the harmonic synth,
filtered noise and the reverb, if any), computed by the pieces of
`ddsp_core.playing.streaming.StreamingSynth` on the whole input at once, with fresh noise
on every request.
"""

import contextlib
import math

SIGNATURE_KEY = "serving_default"
AUDIO_KEY = "audio"
DEFAULT_SERVING_SECONDS = 4.0


def serving_frames(frame_rate, serving_seconds):
    """Frames per request for `serving_seconds` at `frame_rate` (at least one)."""
    return max(1, int(round(float(serving_seconds) * float(frame_rate))))


@contextlib.contextmanager
def portable_rnn(model, *, unroll=False, has_gpu=None):
    """While an export is traced: the decoder's GRU without cuDNN's kernel, on a machine with a GPU.

    There, Keras computes a GRU with cuDNN (nn.FastGRU defers to it), an op that neither TFLite
    nor a CPU server has. Inside this context it runs Keras' generic GRU instead: a loop over
    the frames, or with `unroll` the steps written out (for a one-frame model, no loop at all).
    On a machine without a GPU nothing changes (nn.FastGRU's path is already portable).

    Args:
        model: The `Autoencoder` being exported.
        unroll: Unroll the GRU's steps (for a fixed, small number of frames).
        has_gpu: Whether a GPU is visible; detected when None.
    """
    from ddsp_core import accelerators

    rnn = getattr(model.decoder, "rnn", None)
    if has_gpu is None:
        has_gpu = accelerators.has_gpu()
    if rnn is None or not has_gpu or not hasattr(rnn, "use_cudnn"):
        yield
        return
    saved = rnn.use_cudnn, rnn.unroll
    rnn.use_cudnn, rnn.unroll = False, bool(unroll) or rnn.unroll
    try:
        yield
    finally:
        rnn.use_cudnn, rnn.unroll = saved


def serving_module(instrument, n_frames):
    """A tf.Module whose tf.function `serve` is the serving signature (see the module docstring).

    Args:
        instrument: A loaded `ddsp_core.playing.instrument.Instrument` (TensorFlow backend).
        n_frames: Frames per request.
    """
    import keras
    import tensorflow as tf

    from ddsp_core.playing.streaming import StreamingSynth

    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"A SavedModel is exported from the TensorFlow backend (KERAS_BACKEND=tensorflow); this "
                         f"process runs Keras on {keras.backend.backend()}.")
    synth = StreamingSynth(instrument.model, instrument.hop_size, batch_size=1)
    level_key, hop = instrument.level_key, synth.hop_size
    n_frames = int(n_frames)
    n_samples = n_frames * hop
    # Frames holding the last one after the input, so that the latency's samples are rendered too.
    n_held = math.ceil(synth.latency_samples / hop)
    variables = {id(v): v for v in instrument.model.variables}
    if synth.parts.reverb is not None:
        variables.setdefault(id(synth.parts.reverb._ir), synth.parts.reverb._ir)
    variables = list(variables.values())

    class ServingModule(tf.Module):
        def __init__(self):
            super().__init__(name="ddsp_serving")
            self.model_variables = variables  # Tracked, so they are saved.

        @tf.function(input_signature=[tf.TensorSpec([1, n_frames], tf.float32, name="f0_hz"),
                                      tf.TensorSpec([1, n_frames], tf.float32, name=level_key)])
        def serve(self, f0_hz, level_db):
            return {AUDIO_KEY: render(f0_hz, level_db)}

    def render(f0_hz, level_db):
        """[1, n_frames] curves -> audio [1, n_samples] (see StreamingSynth.process and flush)."""
        gru_state = tf.zeros([1, synth.rnn_channels], tf.float32)
        controls, _ = synth._controls({"f0_hz": f0_hz, level_key: level_db}, gru_state)
        f0, amplitudes, magnitudes = (controls[key] for key in ("f0_hz", "harmonic_amplitudes", "noise_magnitudes"))

        def hold_last(x):  # [1, n_frames, k] -> [1, n_frames + n_held, k]
            return tf.concat([x, tf.repeat(x[:, -1:], n_held, axis=1)], axis=1)

        f0, amplitudes = hold_last(f0), hold_last(amplitudes)
        magnitudes = tf.concat([magnitudes, tf.zeros([1, n_held, synth.n_bands])], axis=1)
        noise = tf.concat([tf.random.uniform([1, n_samples], -1.0, 1.0), tf.zeros([1, n_held * hop])], axis=1)
        _, audio = synth._synthesize(synth.initial_synth_state(f0, amplitudes), f0, amplitudes, magnitudes, noise)
        return audio[:, synth.latency_samples:synth.latency_samples + n_samples]  # [1, n_samples]

    return ServingModule()


def export_saved_model(instrument, path, *, serving_seconds=DEFAULT_SERVING_SECONDS, has_gpu=None):
    """Writes the serving SavedModel to `path` (a local folder or gs://); returns n_frames per request.

    `has_gpu`: see `portable_rnn` (detected when None).
    """
    import tensorflow as tf

    n_frames = serving_frames(instrument.frame_rate, serving_seconds)
    module = serving_module(instrument, n_frames)
    with portable_rnn(instrument.model, has_gpu=has_gpu):  # The signature is traced while saving.
        tf.saved_model.save(module, path, signatures={SIGNATURE_KEY: module.serve})
    return n_frames
