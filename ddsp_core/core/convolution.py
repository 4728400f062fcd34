"""FFT convolution and time-varying linear-phase FIR filters designed from magnitude responses."""

import math

import numpy as np
from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.framing import frame, overlap_and_add
from ddsp_core.core.units import float32

CONVOLUTION_PADDINGS = ("same", "valid")


def get_fft_size(frame_size, ir_size, power_of_2=True):
    """FFT length for a linear (not circular) convolution: >= frame_size + ir_size - 1."""
    convolution_size = frame_size + ir_size - 1
    if power_of_2:
        return int(2 ** math.ceil(math.log2(convolution_size)))
    return int(convolution_size)


def _complex_multiply(a, b):
    """(a_real + i a_imag) * (b_real + i b_imag) for (real, imag) tuples."""
    return (a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0])


def crop_and_compensate_delay(audio, audio_size, ir_size, padding, delay_compensation):
    """Crops a full convolution output to the wanted length.

    Args:
        audio: Full convolution output, [batch, >= audio_size + ir_size - 1].
        audio_size: Length of the input audio, in samples.
        ir_size: Length of the impulse response, in samples.
        padding: 'same' (output has audio_size samples) or 'valid' (the full
            audio_size + ir_size - 1 samples).
        delay_compensation: Samples removed from the front. Negative: the group delay of
            a linear-phase filter from `frequency_impulse_response`, (ir_size - 1) // 2.

    Returns:
        [batch, audio_size] ('same') or [batch, audio_size + ir_size - 1] ('valid').
    """
    if padding not in CONVOLUTION_PADDINGS:
        raise ValueError(f"padding must be one of {CONVOLUTION_PADDINGS}, got {padding!r}.")
    full_size = audio_size + ir_size - 1
    crop_size = audio_size if padding == "same" else full_size
    start = (ir_size - 1) // 2 if delay_compensation < 0 else int(delay_compensation)
    if start + crop_size > audio.shape[-1]:
        audio = ops.pad(audio, [[0, 0], [0, start + crop_size - audio.shape[-1]]])
    return audio[:, start:start + crop_size]


def fft_convolve(audio, impulse_response, padding="same", delay_compensation=-1):
    """Convolves audio with a fixed or time-varying impulse response, using FFTs.

    For a time-varying response, the audio is cut into n_ir_frames equal, non-overlapping
    frames; frame i is convolved with impulse_response[:, i] and the results are
    overlap-added.

    Args:
        audio: [batch, n_samples].
        impulse_response: [batch, ir_size] (fixed) or [batch, n_ir_frames, ir_size]
            (time-varying). A batch of 1 is broadcast to the audio's batch.
        padding: 'same' (output is n_samples long) or 'valid' (n_samples + ir_size - 1).
        delay_compensation: Samples to drop from the front of the output. -1 removes the
            group delay, (ir_size - 1) // 2, of the linear-phase filters made by
            `frequency_impulse_response`; 0 keeps the output causal (e.g. reverb).

    Returns:
        Filtered audio, [batch, n_samples] ('same') or [batch, n_samples + ir_size - 1].
    """
    audio = float32(audio)
    impulse_response = float32(impulse_response)
    checks.check_rank("audio", audio, 2, "[batch, n_samples]")
    checks.check_rank("impulse_response", impulse_response, (2, 3), "[batch, ir_size] or [batch, n_ir_frames, ir_size]")
    if len(impulse_response.shape) == 2:
        impulse_response = impulse_response[:, None, :]
    batch_size, audio_size = audio.shape[0], audio.shape[1]
    ir_batch, n_ir_frames, ir_size = impulse_response.shape
    if ir_batch == 1 and batch_size != 1:
        impulse_response = ops.broadcast_to(impulse_response, (ops.shape(audio)[0], n_ir_frames, ir_size))
    elif batch_size is not None and ir_batch is not None and ir_batch != batch_size:
        raise ValueError(
            f"impulse_response has batch size {ir_batch}, audio has {batch_size}: they must match (or be 1)."
        )

    frame_size = -(-audio_size // n_ir_frames)
    audio_frames = frame(audio, frame_size, frame_size, pad_end=True)  # [batch, n_ir_frames, frame_size]
    if audio_frames.shape[1] != n_ir_frames:
        raise ValueError(
            f"audio of {audio_size} samples cannot be cut into {n_ir_frames} frames (one per impulse response): "
            f"it gives {audio_frames.shape[1]}. Use a number of samples divisible by the number of frames."
        )
    fft_size = get_fft_size(frame_size, ir_size)
    audio_spectrum = ops.rfft(audio_frames, fft_size)
    ir_spectrum = ops.rfft(impulse_response, fft_size)
    frames_out = ops.irfft(_complex_multiply(audio_spectrum, ir_spectrum), fft_size)
    audio_out = overlap_and_add(frames_out, frame_size)  # [batch, full + padding]
    return crop_and_compensate_delay(audio_out, audio_size, ir_size, padding, delay_compensation)


def _symmetric_hann(window_size):
    """Hann window of odd length with no zero endpoints, peaking at 1 in the middle: [window_size]."""
    n = np.arange(window_size)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * (n + 1) / (window_size + 1))


def apply_window_to_impulse_response(impulse_response, window_size=0, causal=False):
    """Windows impulse responses with a Hann window and puts them in causal, linear-phase form.

    The response is cut to an odd length around its peak (time 0) and multiplied by a
    symmetric Hann window of that length, so a symmetric input stays symmetric and its
    group delay is (ir_size - 1) / 2 samples at every frequency.

    Args:
        impulse_response: [..., n_taps] (e.g. [batch, n_frames, n_taps]). In zero-phase form
            (time 0 at index 0, negative times wrapped to the end, as an inverse FFT gives
            them), or in causal form (time 0 at index n_taps // 2) if `causal`.
        window_size: Window length before it is made odd: 0 (or more than n_taps) uses
            n_taps. Shorter windows give smoother responses with better time resolution.
        causal: Whether `impulse_response` is in causal form.

    Returns:
        Windowed responses in causal form, [..., ir_size], ir_size odd: the window size,
        minus one if it was even. Time 0 is at index (ir_size - 1) // 2.
    """
    impulse_response = float32(impulse_response)
    n_taps = impulse_response.shape[-1]
    if n_taps is None or n_taps < 1:
        raise ValueError(
            f"impulse_response needs a static, non-empty last axis, got shape {tuple(impulse_response.shape)}."
        )
    if causal:  # time 0 at index n_taps // 2 -> index 0
        shift = n_taps // 2
        impulse_response = ops.concatenate([impulse_response[..., shift:], impulse_response[..., :shift]], axis=-1)
    if window_size <= 0 or window_size > n_taps:
        window_size = n_taps
    ir_size = window_size if window_size % 2 == 1 else window_size - 1
    half = (ir_size - 1) // 2
    # Circular indices -half..half, i.e. the response centred on sample `half`.
    centred = ops.concatenate([impulse_response[..., n_taps - half:], impulse_response[..., :half + 1]], axis=-1)
    return centred * ops.convert_to_tensor(_symmetric_hann(ir_size).astype("float32"))


def frequency_impulse_response(magnitudes, window_size=0):
    """Designs linear-phase FIR filters from magnitude responses (frequency sampling).

    The zero-phase impulse response (inverse FFT of the magnitudes) is windowed with a
    Hann window and shifted to be causal and symmetric (`apply_window_to_impulse_response`),
    so its group delay is (ir_size - 1) / 2 samples at every frequency.

    Args:
        magnitudes: Linear magnitude response, sampled uniformly from 0 Hz to Nyquist,
            [batch, n_frames, n_frequencies] (or [batch, n_frequencies]).
        window_size: Length of the impulse response before it is made odd: 0 (or more
            than 2 * (n_frequencies - 1)) uses 2 * (n_frequencies - 1). Shorter windows
            give smoother responses with better time resolution.

    Returns:
        Impulse responses, [batch, n_frames, ir_size] (or [batch, ir_size]), ir_size odd:
        the window size, minus one if it was even.
    """
    magnitudes = float32(magnitudes)
    n_frequencies = magnitudes.shape[-1]
    if n_frequencies is None or n_frequencies < 2:
        raise ValueError(f"magnitudes needs at least 2 frequency bins on its last axis, got shape {tuple(magnitudes.shape)}.")
    full_size = 2 * (n_frequencies - 1)
    impulse_response = ops.irfft((magnitudes, ops.zeros_like(magnitudes)), full_size)  # zero-phase
    return apply_window_to_impulse_response(impulse_response, window_size)


def frequency_filter(audio, magnitudes, window_size=0, padding="same"):
    """Filters audio with time-varying linear-phase FIR filters given by magnitude responses.

    Args:
        audio: [batch, n_samples].
        magnitudes: Linear magnitude responses from 0 Hz to Nyquist,
            [batch, n_frames, n_frequencies] (or [batch, n_frequencies] for a fixed
            filter). n_samples should be divisible by n_frames.
        window_size: Impulse response length, see `frequency_impulse_response`.
        padding: 'same' or 'valid', see `fft_convolve`.

    Returns:
        Filtered audio, [batch, n_samples] ('same'); the filter delay is compensated.
    """
    impulse_response = frequency_impulse_response(magnitudes, window_size=window_size)
    return fft_convolve(audio, impulse_response, padding=padding)
