"""Spectral features: STFT magnitudes, mel spectrograms and MFCCs, A-weighted loudness,
frame RMS and power in dB, and CREPE f0 per frame."""

import numpy as np
from keras import ops

from ddsp_core import crepe
from ddsp_core.core import checks
from ddsp_core.core.framing import PAD_MODES, PADDINGS, frame, get_framed_lengths, pad  # noqa: F401  magenta's names
from ddsp_core.core.units import DB_RANGE, float32, power_to_db, safe_log
from ddsp_core.crepe_layers import PretrainedCREPE  # noqa: F401  magenta's spectral_ops.PretrainedCREPE

CREPE_SAMPLE_RATE = crepe.SAMPLE_RATE  # Hz
CREPE_FRAME_SIZE = crepe.FRAME_SIZE  # samples
F0_RANGE = 127.0  # MIDI
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


def stft_np(audio, frame_size=2048, overlap=0.75, pad_end=True):
    """`stft` in NumPy (not differentiable): the same frames and periodic Hann window.

    Args:
        audio: NumPy array [batch, n_samples] or [n_samples].
        frame_size, overlap, pad_end: As in `stft`.

    Returns:
        Complex64 NumPy array [batch, n_frames, frame_size // 2 + 1] (or [n_frames, ...]):
        what `stft` returns as (real, imag), here as one complex array, like magenta's.
    """
    checks.check_positive_int("frame_size", frame_size)
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap!r}.")
    audio = np.asarray(audio, dtype=np.float32)
    checks.check_rank("audio", audio, (1, 2), "[n_samples] or [batch, n_samples]")
    hop_size = int(frame_size * (1.0 - overlap))
    n_samples = audio.shape[-1]
    if pad_end:
        n_frames = max(1, -(-n_samples // hop_size))
    else:
        n_frames = 1 + (n_samples - frame_size) // hop_size
        if n_frames < 1:
            raise ValueError(f"audio has {n_samples} samples, fewer than one frame of {frame_size}.")
    needed = (n_frames - 1) * hop_size + frame_size
    widths = [(0, 0)] * (audio.ndim - 1) + [(0, max(0, needed - n_samples))]
    padded = np.pad(audio, widths)[..., :needed]
    windows = np.lib.stride_tricks.sliding_window_view(padded, frame_size, axis=-1)[..., ::hop_size, :]
    return np.fft.rfft(windows * _periodic_hann(frame_size), axis=-1).astype(np.complex64)


def _power_spectrogram(audio, size=2048, overlap=0.75, pad_end=True):
    """Squared STFT magnitude, [batch, n_frames, size // 2 + 1]."""
    real, imag = stft(audio, frame_size=size, overlap=overlap, pad_end=pad_end)
    return real * real + imag * imag


def compute_mag(audio, size=2048, overlap=0.75, pad_end=True):
    """STFT magnitude (linear), [batch, n_frames, size // 2 + 1]."""
    power = _power_spectrogram(audio, size=size, overlap=overlap, pad_end=pad_end)
    return ops.sqrt(ops.maximum(power, MAG_POWER_FLOOR))


def compute_logmag(audio, size=2048, overlap=0.75, pad_end=True):
    """Natural log of the STFT magnitude (see `safe_log`), [batch, n_frames, size // 2 + 1]."""
    return safe_log(compute_mag(audio, size=size, overlap=overlap, pad_end=pad_end))


def _hz_to_mel_np(frequencies_hz):
    """HTK mel scale in NumPy: 1127 ln(1 + f / 700) (= 2595 log10(1 + f / 700), `core.hz_to_mel`)."""
    return 1127.0 * np.log1p(np.asarray(frequencies_hz, dtype=np.float64) / 700.0)


def mel_weight_matrix(n_mels, n_bins, sample_rate=16000, lo_hz=0.0, hi_hz=8000.0):
    """Triangular mel filters, mapping linear STFT bins to mel bands (as tf.signal's).

    Band k rises linearly in mel from edge k to a peak of 1 at edge k + 1 and falls back
    to 0 at edge k + 2, where the n_mels + 2 edges are spaced evenly in mel from lo_hz to
    hi_hz. Bin j is at j * (sample_rate / 2) / (n_bins - 1) Hz; the 0 Hz bin gets no weight.

    Args:
        n_mels: Number of mel bands.
        n_bins: Number of STFT bins, fft_size // 2 + 1.
        sample_rate: Audio sample rate in Hz.
        lo_hz, hi_hz: Lowest and highest band edges in Hz, 0 <= lo_hz < hi_hz <= sample_rate / 2.

    Returns:
        NumPy float32 matrix [n_bins, n_mels].
    """
    checks.check_positive_int("n_mels", n_mels)
    checks.check_positive("sample_rate", sample_rate)
    if n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {n_bins}.")
    if not 0.0 <= lo_hz < hi_hz <= sample_rate / 2.0:
        raise ValueError(f"Mel band edges must satisfy 0 <= lo_hz < hi_hz <= sample_rate / 2 = {sample_rate / 2.0}, "
                         f"got lo_hz={lo_hz}, hi_hz={hi_hz}.")
    bin_mel = _hz_to_mel_np(np.linspace(0.0, sample_rate / 2.0, n_bins)[1:])[:, None]  # [n_bins - 1, 1]
    edges = np.linspace(_hz_to_mel_np(lo_hz), _hz_to_mel_np(hi_hz), n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]  # each [n_mels]
    rising = (bin_mel - lower) / (center - lower)
    falling = (upper - bin_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))  # [n_bins - 1, n_mels]
    return np.concatenate([np.zeros((1, n_mels)), weights]).astype(np.float32)


def compute_mel(audio, lo_hz=0.0, hi_hz=8000.0, bins=64, fft_size=2048, overlap=0.75, pad_end=True,
                sample_rate=16000):
    """Mel spectrogram: STFT magnitudes (`compute_mag`) through `mel_weight_matrix`.

    Args:
        audio: [batch, n_samples] or [n_samples], at sample_rate Hz.
        lo_hz, hi_hz: Band edges in Hz (hi_hz at most sample_rate / 2).
        bins: Number of mel bands.
        fft_size, overlap, pad_end: As in `compute_mag`.
        sample_rate: Audio sample rate in Hz.

    Returns:
        Linear mel magnitudes, [batch, n_frames, bins] (or [n_frames, bins]).
    """
    mag = compute_mag(audio, size=fft_size, overlap=overlap, pad_end=pad_end)
    matrix = mel_weight_matrix(bins, mag.shape[-1], sample_rate, lo_hz, hi_hz)
    return ops.matmul(mag, ops.convert_to_tensor(matrix))


def compute_logmel(audio, lo_hz=80.0, hi_hz=7600.0, bins=64, fft_size=2048, overlap=0.75, pad_end=True,
                   sample_rate=16000):
    """Natural log (`safe_log`) of `compute_mel`, [batch, n_frames, bins]."""
    return safe_log(compute_mel(audio, lo_hz, hi_hz, bins, fft_size, overlap, pad_end, sample_rate))


def compute_mfcc(audio, lo_hz=20.0, hi_hz=8000.0, fft_size=1024, mel_bins=128, mfcc_bins=13, overlap=0.75,
                 pad_end=True, sample_rate=16000):
    """Mel-frequency cepstral coefficients: a DCT-II of the log mel spectrogram.

    mfcc_k = sqrt(2 / M) * sum_m logmel_m cos(pi k (2m + 1) / (2M)), M = mel_bins, for
    k < mfcc_bins (tf.signal.mfccs_from_log_mel_spectrograms' scaling).

    Args:
        audio: [batch, n_samples] or [n_samples], at sample_rate Hz.
        lo_hz, hi_hz, fft_size, overlap, pad_end, sample_rate: As in `compute_logmel`.
        mel_bins: Number of mel bands.
        mfcc_bins: Number of coefficients kept (at most mel_bins).

    Returns:
        [batch, n_frames, mfcc_bins] (or [n_frames, mfcc_bins]).
    """
    checks.check_positive_int("mfcc_bins", mfcc_bins)
    if mfcc_bins > mel_bins:
        raise ValueError(f"mfcc_bins ({mfcc_bins}) must be at most mel_bins ({mel_bins}).")
    logmel = compute_logmel(audio, lo_hz, hi_hz, mel_bins, fft_size, overlap, pad_end, sample_rate)
    m = np.arange(mel_bins)[:, None]
    k = np.arange(mfcc_bins)[None, :]
    dct = np.sqrt(2.0 / mel_bins) * np.cos(np.pi * k * (2 * m + 1) / (2 * mel_bins))  # [mel_bins, mfcc_bins]
    return ops.matmul(logmel, ops.convert_to_tensor(dct.astype(np.float32)))


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
    (`compute_power` is the same, with magenta's argument order and defaults.)

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


def compute_rms_energy(audio, sample_rate=16000, frame_rate=250, frame_size=512, padding="center"):
    """Root mean square of each rectangular (unwindowed) frame: sqrt(mean(audio^2)).

    Args:
        audio: [batch, n_samples] or [n_samples].
        sample_rate: Audio sample rate in Hz.
        frame_rate: Frames per second; hop = sample_rate // frame_rate samples (at most
            frame_size).
        frame_size: Samples per frame (even, for 'center').
        padding: 'center', 'same' or 'valid' (see `pad`).

    Returns:
        RMS amplitude, linear, [batch, n_frames] (or [n_frames]). Silent frames give 0,
        with a zero (not NaN) gradient.
    """
    hop_size = _hop_size(sample_rate, frame_rate, frame_size, "frame_size")
    audio, added_batch = _as_batch(audio)
    audio = pad(audio, frame_size, hop_size, padding=padding)  # [batch, n_padded]
    frames = frame(audio * audio, frame_size, hop_size, pad_end=False)  # [batch, n_frames, frame_size]
    mean_square = ops.mean(frames, axis=-1)  # [batch, n_frames]
    sounding = mean_square > 0.0
    rms = ops.where(sounding, ops.sqrt(ops.where(sounding, mean_square, 1.0)), 0.0)
    return rms[0] if added_batch else rms


def compute_power(audio, sample_rate=16000, frame_rate=250, frame_size=512, ref_db=0.0, range_db=DB_RANGE,
                  padding="center"):
    """Power per frame in dB, 20 log10(`compute_rms_energy`): magenta's arguments and defaults.

    The same quantity as `compute_power_db` (see there), which takes sample_rate,
    frame_rate, frame_size, range_db, ref_db, padding in that order, with DDSP-VST's
    defaults (50 frames/s, 1024 samples).

    Returns:
        Power in dB, [batch, n_frames] (or [n_frames]); floored at -range_db.
    """
    return compute_power_db(audio, sample_rate=sample_rate, frame_rate=frame_rate, frame_size=frame_size,
                            range_db=range_db, ref_db=ref_db, padding=padding)


def _n_valid_crepe_frames(n_samples, frame_rate):
    """Number of CREPE windows (starting every 16000 / frame_rate samples) that fit in the audio."""
    starts = np.round(np.arange(crepe.n_frames_for(n_samples, frame_rate, "same")) * (CREPE_SAMPLE_RATE / frame_rate))
    return int(np.sum(starts + CREPE_FRAME_SIZE <= n_samples))


def compute_f0(audio, frame_rate, viterbi=True, padding="center", capacity="full", pitch_tracker=None):
    """Fundamental frequency and its confidence per frame, from CREPE.

    Frames line up with `compute_loudness` at the same frame rate and padding: with
    'center', frame i is centred on time i / frame_rate and there are
    1 + n_samples // hop frames.

    Args:
        audio: [n_samples] at 16 kHz (CREPE's rate; resample other rates first, e.g.
            with `ddsp_core.io.audio_io.resample`).
        frame_rate: Frames per second (any positive value).
        viterbi: Decode along a Viterbi path (smoother, no octave jumps) rather than
            each frame's argmax.
        padding: 'center' or 'same' (see `crepe.frame_audio`), or 'valid' (only the
            windows of CREPE_FRAME_SIZE samples that fit in the audio, frame i starting at
            time i / frame_rate).
        capacity: CREPE model size: 'tiny', 'small', 'medium', 'large' or 'full'.
        pitch_tracker: A `crepe.PitchTracker` to reuse; loading one takes 0.1-1 s,
            so pass one when calling this for many files. Overrides `capacity`.

    Returns:
        (f0_hz, f0_confidence): NumPy float32 arrays [n_frames]; f0 in Hz,
        confidence in [0, 1].
    """
    checks.check_positive("frame_rate", frame_rate)
    audio = np.asarray(ops.convert_to_numpy(audio), dtype=np.float32)
    if audio.ndim == 2 and audio.shape[0] == 1:
        audio = audio[0]
    if audio.ndim != 1:
        raise ValueError(f"compute_f0 takes mono audio [n_samples] at 16 kHz, got shape {audio.shape}.")
    tracker = pitch_tracker or crepe.PitchTracker(capacity)
    if padding != "valid":
        return tracker(audio, frame_rate, viterbi=viterbi, padding=padding)
    # 'valid' frames are the first 'same' frames; decode after dropping the others.
    salience = tracker.salience(audio, frame_rate, padding="same")[:_n_valid_crepe_frames(audio.shape[0], frame_rate)]
    return crepe.decode(salience, viterbi=viterbi)


def pad_or_trim_to_expected_length(vector, expected_len, pad_value=0, len_tolerance=20, use_tf=False):
    """Pads (with pad_value) or trims the last axis of `vector` to expected_len entries.

    Features computed with different framings (`compute_loudness`, `compute_f0`) can
    differ in length by a few frames; this aligns them, refusing larger differences.

    Args:
        vector: [n] or [batch, n] (any rank: the last axis is changed).
        expected_len: Length wanted.
        pad_value: Value appended when the vector is short.
        len_tolerance: Largest |n - expected_len| accepted.
        use_tf: False: NumPy in, NumPy out. True: a backend tensor (differentiable).

    Returns:
        [expected_len] or [batch, expected_len].

    Raises:
        ValueError: If |n - expected_len| > len_tolerance.
    """
    expected_len = int(expected_len)
    vector = float32(vector) if use_tf else np.asarray(vector)
    length = int(vector.shape[-1])
    if abs(length - expected_len) > len_tolerance:
        raise ValueError(f"Vector length {length} differs from the expected length {expected_len} by more than "
                         f"len_tolerance={len_tolerance}.")
    if length > expected_len:
        return vector[..., :expected_len]
    widths = [(0, 0)] * (len(vector.shape) - 1) + [(0, expected_len - length)]
    if use_tf:
        return ops.pad(vector, widths, constant_values=pad_value)
    return np.pad(vector, widths, constant_values=pad_value)


def reset_crepe():
    """Does nothing: kept for magenta's API, whose CREPE models lived in a global cache.

    Here each `crepe.PitchTracker` (or `PretrainedCREPE`) holds its own model, so there is
    no shared state to reset.
    """
