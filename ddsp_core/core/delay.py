"""Time-varying delay lines, read with linear interpolation (vibrato, chorus, flanger)."""

from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.units import float32


def variable_length_delay(phase, audio, max_length=512):
    """Delays audio by a time-varying, fractional number of samples.

    Output sample t reads the input at t - d(t), where d(t) = phase(t) * max_length
    samples, interpolating linearly between the two neighbouring samples; the input is
    zero before its first sample, so the output is causal. Memory grows with n_samples,
    not with n_samples * max_length.

    magenta's version agrees for phases up to (max_length - 1) / max_length; above that it
    interpolates back towards no delay (its table wraps around), where this one delays by
    up to max_length samples, as both docstrings say.

    Args:
        phase: Delay as a fraction of max_length, in [0, 1] (values outside are clipped),
            [batch, n_samples, 1] or [batch, n_samples].
        audio: Audio to delay, [batch, n_samples].
        max_length: Delay in samples at phase 1 (a positive integer).

    Returns:
        Delayed audio, [batch, n_samples].
    """
    checks.check_positive_int("max_length", max_length)
    phase, audio = float32(phase), float32(audio)
    checks.check_rank("audio", audio, 2, "[batch, n_samples]")
    checks.check_rank("phase", phase, (2, 3), "[batch, n_samples, 1] or [batch, n_samples]")
    if len(phase.shape) == 3:
        checks.check_dim("phase", phase, -1, 1, "[batch, n_samples, 1]")
        phase = phase[:, :, 0]
    checks.check_same_dims([("phase", phase), ("audio", audio)], axes=(1,),
                           expected_shape="phase [batch, n_samples, 1], audio [batch, n_samples]")
    checks.check_finite("phase", phase)
    n_samples = audio.shape[1]
    delay = ops.clip(phase, 0.0, 1.0) * float(max_length)  # [batch, n_samples], in samples
    whole = ops.floor(delay)
    fraction = delay - whole  # in [0, 1); carries the gradient with respect to phase
    # padded[max_length + 1 + t] = audio[t]. Integer indices, exact however long the audio:
    # audio[t - delay] = (1 - fraction) * audio[t - whole] + fraction * audio[t - whole - 1].
    padded = ops.pad(audio, [[0, 0], [max_length + 1, 0]])
    current = ops.arange(n_samples, dtype="int32")[None, :] + (max_length + 1) - ops.cast(whole, "int32")
    # Broadcast the indices to the batch of `padded` (phase may have a batch of 1).
    current = current + ops.zeros_like(padded[:, :1], dtype="int32")
    now = ops.take_along_axis(padded, current, axis=1)
    earlier = ops.take_along_axis(padded, current - 1, axis=1)
    return now + fraction * (earlier - now)
