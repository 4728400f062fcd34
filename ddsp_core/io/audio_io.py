"""Decoding audio files into mono float32 at the rates the features and model need.

Anything libsndfile reads works (WAV of any bit depth, FLAC, OGG/Vorbis, Opus, MP3 on
libsndfile >= 1.1, AIFF, ...). Problems with a file raise `AudioFileError`, whose
message says what is wrong in words a user can act on; the prepare job records it as
the reason the file was skipped.
"""

import io
import re

import numpy as np


class AudioFileError(ValueError):
    """A file that cannot be used as training audio; str(error) is the reason."""


def decode(data, name="<bytes>"):
    """Decodes an audio file's bytes.

    Args:
        data: The file's contents.
        name: The file's path, for messages.

    Returns:
        (samples [n_samples, n_channels] float32 in [-1, 1], sample_rate in Hz).

    Raises:
        AudioFileError: empty file, not audio, or a format libsndfile cannot decode.
    """
    if not data:
        raise AudioFileError("empty file (0 bytes)")
    import soundfile  # Here, so that importing this module (for `resample`) needs no libsndfile.

    try:
        samples, sample_rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise AudioFileError(f"not a readable audio file ({first_line(error)}); "
                             "convert it to WAV or FLAC, or remove it from the input pattern") from None
    if samples.shape[0] == 0:
        raise AudioFileError("no audio samples (zero-length file)")
    _check_finite(samples, "contains")
    return samples, int(sample_rate)


def _check_finite(samples, what):
    if not np.all(np.isfinite(samples)):
        raise AudioFileError(f"{what} NaN or infinite samples (a corrupt float file?)")


def probe(handle):
    """(n_samples, sample_rate, channels) of an open audio file, from its header; the file is
    not decoded.

    Raises:
        AudioFileError: when libsndfile cannot read the header (`decode` gives the reason in
            full; callers that need it decode the file whole).
    """
    import soundfile

    try:
        with soundfile.SoundFile(handle) as sound:
            return int(sound.frames), int(sound.samplerate), int(sound.channels)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise AudioFileError(f"not a readable audio file ({first_line(error)})") from None


def read_part(handle, start, stop, name="<file>"):
    """Samples [start, stop) of an open audio file (a seekable binary file object).

    Returns:
        [n, n_channels] float32 in [-1, 1], n = stop - start, or fewer at the end of the file.

    Raises:
        AudioFileError: the part cannot be decoded, or holds NaN or infinite samples.
    """
    import soundfile

    try:
        with soundfile.SoundFile(handle) as sound:
            sound.seek(int(start))
            samples = sound.read(int(stop) - int(start), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise AudioFileError(f"cannot decode samples {start}-{stop} of {name} ({first_line(error)})") from None
    _check_finite(samples, f"samples {start}-{stop} contain")
    return samples


def resampled_length(n_samples, from_rate, to_rate):
    """Samples `resample` gives for `n_samples` at from_rate: n * to_rate / from_rate, halves rounded up."""
    if from_rate == to_rate:
        return int(n_samples)
    return (2 * int(n_samples) * int(to_rate) + int(from_rate)) // (2 * int(from_rate))


def to_mono(samples):
    """[n_samples, n_channels] -> [n_samples], the mean of the channels."""
    samples = np.asarray(samples, dtype=np.float32)
    return samples if samples.ndim == 1 else samples.mean(axis=-1, dtype=np.float32)


def resample(audio, from_rate, to_rate):
    """Band-limited resampling with libsoxr (its 'VHQ' quality).

    Args:
        audio: [n_samples] float32.
        from_rate, to_rate: Sample rates in Hz.

    Returns:
        [round(n_samples * to_rate / from_rate)] float32 (the input itself when the rates are equal).
    """
    if from_rate == to_rate:
        return np.asarray(audio, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(audio, dtype=np.float32), from_rate, to_rate, quality="VHQ").astype(np.float32)


def peak_dbfs(audio):
    """Peak level of `audio` in dB relative to full scale (-inf for digital silence)."""
    peak = float(np.max(np.abs(audio))) if np.size(audio) else 0.0
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(peak) if peak > 0 else -np.inf


def first_line(error):
    """The first line of an error's message, without libsndfile's 'Error opening <object>: '."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    return re.sub(r"^Error opening <[^>]*>: ", "", text.splitlines()[0])
