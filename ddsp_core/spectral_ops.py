"""Spectral features: STFT magnitudes, A-weighted loudness and frame power in dB per frame."""

import numpy as np
from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.framing import frame
from ddsp_core.core.units import DB_RANGE, float32, power_to_db, safe_log

PADDINGS = ("valid", "same", "center")
# Magnitudes are floored at this before the square root, so its gradient stays finite.
MAG_POWER_FLOOR = 1e-20


def _periodic_hann(size):
    """Periodic Hann window, as tf.signal.hann_window: [size]."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(size) / size)).astype("float32")


def _as_batch(audio):
    """Returns (audio as [batch, n_samples], whether a batch axis was added)."""
    audio = float32(audio)
    checks.check_rank("audio", audio, (1, 2), "[n_samples] or [batch, n_samples]")
    if len(audio.shape) == 1:
        return audio[None, :], True
    return audio, False


def _windowed_rfft(frames):
    """(real, imag) of the periodic-Hann-windowed frames [..., frame_size]: [..., frame_size // 2 + 1]."""
    frame_size = frames.shape[-1]
    return ops.rfft(frames * ops.convert_to_tensor(_periodic_hann(frame_size)), frame_size)


def stft(audio, frame_size=2048, overlap=0.75, pad_end=True):
    """Short-time Fourier transform with a periodic Hann window.

    Args:
        audio: [batch, n_samples] or [n_samples].
        frame_size: FFT size and window length, in samples.
        overlap: Fraction of a frame shared with the next; hop = frame_size * (1 - overlap).
        pad_end: Zero-pad the end so that every sample is in a frame
            (ceil(n_samples / hop) frames).

    Returns:
        (real, imag), each [batch, n_frames, frame_size // 2 + 1] ([n_frames, ...] for 1-D audio).
    """
    checks.check_positive_int("frame_size", frame_size)
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap!r}.")
    audio, added_batch = _as_batch(audio)
    hop_size = int(frame_size * (1.0 - overlap))
    frames = frame(audio, frame_size, hop_size, pad_end=pad_end)  # [batch, n_frames, frame_size]
    real, imag = _windowed_rfft(frames)
    if added_batch:
        return real[0], imag[0]
    return real, imag


def compute_power(audio, size=2048, overlap=0.75, pad_end=True):
    """Squared STFT magnitude, [batch, n_frames, size // 2 + 1]."""
    real, imag = stft(audio, frame_size=size, overlap=overlap, pad_end=pad_end)
    return real * real + imag * imag


def compute_mag(audio, size=2048, overlap=0.75, pad_end=True):
    """STFT magnitude (linear), [batch, n_frames, size // 2 + 1]."""
    power = compute_power(audio, size=size, overlap=overlap, pad_end=pad_end)
    return ops.sqrt(ops.maximum(power, MAG_POWER_FLOOR))


def compute_logmag(audio, size=2048, overlap=0.75, pad_end=True):
    """Natural log of the STFT magnitude (see `safe_log`), [batch, n_frames, size // 2 + 1]."""
    return safe_log(compute_mag(audio, size=size, overlap=overlap, pad_end=pad_end))


def a_weighting_db(frequencies_hz, min_db=-DB_RANGE):
    """A-weighting (IEC 61672-1) in dB at the given frequencies, clipped at min_db.

    R_A(f) = 12194^2 f^4 / ((f^2 + 20.6^2) sqrt((f^2 + 107.7^2)(f^2 + 737.9^2)) (f^2 + 12194^2)),
    A(f) = 20 log10 R_A(f) + 2.00 dB, which is ~0 dB at 1 kHz.

    Args:
        frequencies_hz: NumPy array of frequencies in Hz.
        min_db: Floor, in dB (0 Hz has -inf dB before clipping).

    Returns:
        NumPy float64 array of weights in dB, same shape.
    """
    f_squared = np.asarray(frequencies_hz, dtype=np.float64) ** 2
    numerator = 12194.0**2 * f_squared**2
    denominator = ((f_squared + 20.6**2) * np.sqrt((f_squared + 107.7**2) * (f_squared + 737.9**2))
                   * (f_squared + 12194.0**2))
    with np.errstate(divide="ignore"):
        weight_db = 20.0 * np.log10(numerator / denominator) + 2.0
    return np.maximum(weight_db, min_db)


def get_framed_lengths(input_length, frame_size, hop_size, padding="center"):
    """(number of frames, padded input length) that `pad` + framing give."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}.")
    if padding == "valid":
        n_frames = max(0, 1 + (input_length - frame_size) // hop_size)
        return n_frames, input_length
    if padding == "same":
        n_frames = -(-input_length // hop_size)
        return n_frames, (n_frames - 1) * hop_size + frame_size
    padded_length = input_length + 2 * (frame_size // 2)
    return 1 + (padded_length - frame_size) // hop_size, padded_length


def pad(audio, frame_size, hop_size, padding="center"):
    """Zero-pads [batch, n_samples] audio for framing.

    'valid': no padding, only whole frames. 'same': pad the end so there are
    ceil(n_samples / hop_size) frames. 'center': pad frame_size // 2 on both sides, so
    frame i is centred on sample i * hop_size (1 + n_samples // hop_size frames).
    """
    n_samples = audio.shape[-1]
    _, padded_length = get_framed_lengths(n_samples, frame_size, hop_size, padding)
    if padding == "center":
        if frame_size % 2:
            raise ValueError(f"padding='center' needs an even frame size, got {frame_size}.")
        return ops.pad(audio, [[0, 0], [frame_size // 2, frame_size // 2]])
    if padding == "same" and padded_length > n_samples:
        return ops.pad(audio, [[0, 0], [0, padded_length - n_samples]])
    return audio


def _hop_size(sample_rate, frame_rate, frame_size, frame_size_name):
    """Samples between frames, sample_rate // frame_rate, checked to be in [1, frame_size]."""
    checks.check_positive("sample_rate", sample_rate)
    checks.check_positive("frame_rate", frame_rate)
    checks.check_positive_int(frame_size_name, frame_size)
    hop_size = int(sample_rate // frame_rate)
    if hop_size < 1 or hop_size > frame_size:
        raise ValueError(f"frame_rate {frame_rate} gives a hop of {hop_size} samples; it must be in "
                         f"[1, {frame_size_name}={frame_size}].")
    return hop_size


def compute_loudness(audio, sample_rate=16000, frame_rate=250, n_fft=512, range_db=DB_RANGE, ref_db=0.0,
                     use_tf=True, padding="center"):
    """Perceptual loudness per frame: A-weighted mean STFT power, in dB.

    For each frame: power = |STFT|^2 (periodic Hann window of n_fft samples, no
    normalisation), weighted by the A-weighting curve, averaged over the
    n_fft // 2 + 1 bins, then converted with `power_to_db` (floored at -range_db). A
    0.5-amplitude 440 Hz sine at 16 kHz reads ~9.7 dB with the defaults.

    Args:
        audio: [batch, n_samples] or [n_samples], in [-1, 1].
        sample_rate: Audio sample rate in Hz.
        frame_rate: Frames per second; hop = sample_rate // frame_rate samples.
        n_fft: FFT size in samples.
        range_db: Dynamic range in dB (the floor is -range_db).
        ref_db: dB value that maps to 0 dB.
        use_tf: Kept for compatibility with magenta's ddsp: False returns a NumPy array.
        padding: 'center' (1 + n_samples // hop frames, frame i centred on sample
            i * hop), 'same' (ceil(n_samples / hop) frames) or 'valid'.

    Returns:
        Loudness in dB, [batch, n_frames] (or [n_frames] for 1-D audio).
    """
    hop_size = _hop_size(sample_rate, frame_rate, n_fft, "n_fft")
    audio, added_batch = _as_batch(audio)
    audio = pad(audio, n_fft, hop_size, padding=padding)
    frames = frame(audio, n_fft, hop_size, pad_end=False)  # [batch, n_frames, n_fft]
    real, imag = _windowed_rfft(frames)
    power = real * real + imag * imag  # [batch, n_frames, n_fft // 2 + 1]
    frequencies = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    weighting = 10.0 ** (a_weighting_db(frequencies) / 10.0)
    mean_power = ops.mean(power * ops.convert_to_tensor(weighting.astype("float32")), axis=-1)
    loudness = power_to_db(mean_power, ref_db=ref_db, range_db=range_db)
    if added_batch:
        loudness = loudness[0]
    return loudness if use_tf else ops.convert_to_numpy(loudness)


def compute_power_db(audio, sample_rate=16000, frame_rate=50, frame_size=1024, range_db=DB_RANGE, ref_db=0.0,
                     padding="center"):
    """Power per frame in dB: the mean square of each rectangular (unwindowed) frame.

    DDSP-VST's level feature (magenta's `compute_power`; not A-weighted, unlike
    `compute_loudness`). For each frame of frame_size samples, hop
    sample_rate // frame_rate: power = mean(audio^2) = rms^2, then `power_to_db`:
    max(10 log10(max(power, 10^(-range_db / 10))) - ref_db, -range_db). A full-scale sine
    (whole periods per frame) reads 10 log10(1/2) = -3.01 dB, a constant 0.1 reads -20 dB.
    (`compute_power`, above, is the squared STFT magnitude: another thing.)

    Args:
        audio: [batch, n_samples] or [n_samples], in [-1, 1].
        sample_rate: Audio sample rate in Hz.
        frame_rate: Frames per second; hop = sample_rate // frame_rate samples, at most
            frame_size (no sample is skipped).
        frame_size: Samples per frame (even, for 'center' padding).
        range_db: Dynamic range in dB (the floor is -range_db).
        ref_db: dB value that maps to 0 dB.
        padding: 'center' (frame_size // 2 zeros at each end: frame i is centred on sample
            i * hop, 1 + n_samples // hop frames, aligned with `compute_loudness` and
            `compute_f0` at the same frame rate), 'same' (ceil(n_samples / hop) frames) or
            'valid'.

    Returns:
        Power in dB, [batch, n_frames] (or [n_frames] for 1-D audio).
    """
    hop_size = _hop_size(sample_rate, frame_rate, frame_size, "frame_size")
    audio, added_batch = _as_batch(audio)
    audio = pad(audio, frame_size, hop_size, padding=padding)  # [batch, n_padded]
    frames = frame(audio * audio, frame_size, hop_size, pad_end=False)  # [batch, n_frames, frame_size]
    power = ops.mean(frames, axis=-1)  # [batch, n_frames]: rms^2
    power_db = power_to_db(power, ref_db=ref_db, range_db=range_db)
    return power_db[0] if added_batch else power_db


def compute_f0(audio, frame_rate, viterbi=True, padding="center", capacity="full", pitch_tracker=None):
    """Fundamental frequency and its confidence per frame, from CREPE.

    Frames line up with `compute_loudness` at the same frame rate and padding: with
    'center', frame i is centred on time i / frame_rate and there are
    1 + n_samples // hop frames.

    Args:
        audio: [n_samples] at 16 kHz (CREPE's rate; resample other rates first, e.g.
            with `ddsp_core.training.data_preparation.audio_io.resample`).
        frame_rate: Frames per second (any positive value).
        viterbi: Decode along a Viterbi path (smoother, no octave jumps) rather than
            each frame's argmax.
        padding: 'center' or 'same' (see `crepe.frame_audio`).
        capacity: CREPE model size: 'tiny', 'small', 'medium', 'large' or 'full'.
        pitch_tracker: A `crepe.PitchTracker` to reuse; loading one takes 0.1-1 s,
            so pass one when calling this for many files. Overrides `capacity`.

    Returns:
        (f0_hz, f0_confidence): NumPy float32 arrays [n_frames]; f0 in Hz,
        confidence in [0, 1].
    """
    from ddsp_core import crepe

    checks.check_positive("frame_rate", frame_rate)
    audio = np.asarray(ops.convert_to_numpy(audio), dtype=np.float32)
    if audio.ndim == 2 and audio.shape[0] == 1:
        audio = audio[0]
    if audio.ndim != 1:
        raise ValueError(f"compute_f0 takes mono audio [n_samples] at 16 kHz, got shape {audio.shape}.")
    tracker = pitch_tracker or crepe.PitchTracker(capacity)
    return tracker(audio, frame_rate, viterbi=viterbi, padding=padding)
