"""Unit conversions and scaling functions: amplitude <-> dB, MIDI <-> Hz, Bark/mel/ERB,
logarithms, exp_sigmoid and other bounded scalings.

All functions take array-likes (NumPy arrays or backend tensors) of any shape and work
element-wise, returning backend tensors of dtype float32 (the dB conversions return NumPy
arrays when asked to, with use_tf=False).
"""

import math

import numpy as np
from keras import ops

from ddsp_core.core import checks

# Dynamic range, in dB, that loudness and power conversions keep by default.
DB_RANGE = 80.0
# The log of this is taken in `safe_log`; keeps log(0) finite.
LOG_EPSILON = 1e-5


def float32(x):
    """Converts an array-like to a float32 backend tensor."""
    return ops.cast(ops.convert_to_tensor(x), "float32")


def safe_log(x, eps=LOG_EPSILON):
    """Natural log of `x + eps`, clipped below at `eps`, so that log(0) stays finite."""
    return ops.log(ops.maximum(float32(x), eps))


def safe_divide(numerator, denominator, eps=1e-7):
    """numerator / denominator, with |denominator| kept above `eps` (sign kept)."""
    denominator = float32(denominator)
    safe = ops.where(ops.abs(denominator) < eps, eps, denominator)
    return float32(numerator) / safe


def logb(x, base=2.0, eps=LOG_EPSILON):
    """Logarithm of `x` to `base`; entries <= 0 are replaced by `eps` first, so the result is finite.

    Positive entries, however small, keep their exact logarithm (unlike `safe_log`, which
    clips at `eps`).

    Args:
        x: Any shape.
        base: A number > 0 other than 1 (or a tensor broadcastable to `x`).
        eps: Stand-in for entries <= 0.
    """
    if isinstance(base, (int, float)) and (base <= 0 or base == 1):
        raise ValueError(f"base must be a positive number other than 1, got {base!r}.")
    x = float32(x)
    log_x = ops.log(ops.where(x <= 0.0, eps, x))
    if isinstance(base, (int, float)):
        return log_x / math.log(base)
    return log_x / ops.log(float32(base))


def log10(x, eps=LOG_EPSILON):
    """Base-10 logarithm; entries <= 0 are replaced by `eps` (see `logb`)."""
    return logb(x, base=10.0, eps=eps)


def power_to_db(power, ref_db=0.0, range_db=DB_RANGE, use_tf=True):
    """Converts power (linear, >= 0) to decibels.

    Args:
        power: Power, e.g. a squared magnitude. Any shape.
        ref_db: dB value that maps to 0 dB in the output.
        range_db: Dynamic range kept, in dB: values below -range_db (relative to 0 dB
            before `ref_db` is subtracted) are clipped there, which also keeps log(0)
            finite.
        use_tf: If False, compute with NumPy and return a NumPy array (magenta's name:
            True means the Keras backend, TensorFlow or JAX).

    Returns:
        Power in dB, same shape as `power`.
    """
    if not use_tf:
        power = np.maximum(np.asarray(power, np.float32), 10.0 ** (-range_db / 10.0))
        return np.maximum(10.0 * np.log10(power) - ref_db, -range_db).astype(np.float32)
    power = ops.maximum(float32(power), 10.0 ** (-range_db / 10.0))
    db = 10.0 * log10(power)
    return ops.maximum(db - ref_db, -range_db)


def amplitude_to_db(amplitude, ref_db=0.0, range_db=DB_RANGE, use_tf=True):
    """Converts an amplitude (linear) to dB: 20 * log10(amplitude), clipped at -range_db.

    use_tf=False computes with NumPy (see `power_to_db`).
    """
    if not use_tf:
        amplitude = np.asarray(amplitude, np.float32)
        return power_to_db(amplitude * amplitude, ref_db=ref_db, range_db=range_db, use_tf=False)
    amplitude = float32(amplitude)
    return power_to_db(amplitude * amplitude, ref_db=ref_db, range_db=range_db)


def db_to_amplitude(db):
    """Converts dB to a linear amplitude: 10 ** (db / 20)."""
    return ops.power(10.0, float32(db) / 20.0)


def db_to_power(db):
    """Converts dB to linear power: 10 ** (db / 10)."""
    return ops.power(10.0, float32(db) / 10.0)


def hz_to_midi(frequencies):
    """Converts frequencies in Hz to (fractional) MIDI note numbers; 0 Hz maps to 0.

    69 is A4 = 440 Hz, one semitone is one unit. Frequencies that would give a
    negative note number (below ~8.18 Hz) also map to 0.
    """
    frequencies = float32(frequencies)
    notes = 12.0 * (ops.log(ops.maximum(frequencies, 1e-10)) / math.log(2.0) - math.log2(440.0)) + 69.0
    return ops.where(notes <= 0.0, 0.0, notes)


def midi_to_hz(notes, midi_zero_silence=False):
    """Converts MIDI note numbers to Hz: 440 * 2 ** ((notes - 69) / 12).

    Args:
        notes: MIDI note numbers, any shape.
        midi_zero_silence: If True, note 0 maps to 0 Hz (silence) instead of ~8.18 Hz.
    """
    notes = float32(notes)
    hz = 440.0 * ops.power(2.0, (notes - 69.0) / 12.0)
    if midi_zero_silence:
        hz = ops.where(notes == 0.0, 0.0, hz)
    return hz


def unit_to_midi(unit, midi_min=20.0, midi_max=90.0, clip=False):
    """Maps [0, 1] linearly to MIDI notes [midi_min, midi_max]."""
    unit = float32(unit)
    if clip:
        unit = ops.clip(unit, 0.0, 1.0)
    return midi_min + (midi_max - midi_min) * unit


def midi_to_unit(midi, midi_min=20.0, midi_max=90.0, clip=False):
    """Maps MIDI notes [midi_min, midi_max] linearly to [0, 1]."""
    unit = (float32(midi) - midi_min) / (midi_max - midi_min)
    return ops.clip(unit, 0.0, 1.0) if clip else unit


def unit_to_hz(unit, hz_min, hz_max, clip=False):
    """Maps [0, 1] to Hz, linear in MIDI (log-frequency) between hz_min and hz_max."""
    midi = unit_to_midi(unit, midi_min=hz_to_midi(hz_min), midi_max=hz_to_midi(hz_max), clip=clip)
    return midi_to_hz(midi)


def hz_to_unit(hz, hz_min, hz_max, clip=False):
    """Maps Hz to [0, 1], linear in MIDI (log-frequency) between hz_min and hz_max."""
    return midi_to_unit(hz_to_midi(hz), midi_min=hz_to_midi(hz_min), midi_max=hz_to_midi(hz_max), clip=clip)


def exp_sigmoid(x, exponent=10.0, max_value=2.0, threshold=1e-7):
    """Exponentiated sigmoid: max_value * sigmoid(x) ** ln(exponent) + threshold.

    The scale function DDSP uses to turn network outputs into positive amplitudes.
    With the defaults it is 2 * sigmoid(x) ** 2.3026 + 1e-7: positive, bounded by
    `max_value` (+ `threshold`), and with a slope that spans many orders of magnitude,
    so amplitudes can be learned in a roughly logarithmic way.

    Args:
        x: Input, any shape.
        exponent: Base whose natural log is the power the sigmoid is raised to.
        max_value: Limit of the output for large x.
        threshold: Floor added to the output, keeping it strictly positive.

    Returns:
        Tensor of the same shape as `x`, in (threshold, max_value + threshold).
    """
    x = float32(x)
    return max_value * ops.power(ops.sigmoid(x), math.log(exponent)) + threshold



def sym_exp_sigmoid(x, width=8.0):
    """Symmetric bump made of `exp_sigmoid`: exp_sigmoid(width * (|x| / 2 - 1)).

    Small (near the 1e-7 floor) around x = 0, rising towards 2 as |x| grows; `width`
    sets how steeply. Any shape.
    """
    x = float32(x)
    return exp_sigmoid(width * (ops.abs(x) / 2.0 - 1.0))


def log_scale(x, min_x, max_x):
    """Maps [-1, 1] to [min_x, max_x] logarithmically: exp((1 - u) ln min_x + u ln max_x), u = (x + 1) / 2.

    Args:
        x: Any shape; -1 gives min_x, 1 gives max_x, 0 their geometric mean.
        min_x, max_x: Positive bounds.
    """
    checks.check_positive("min_x", min_x)
    checks.check_positive("max_x", max_x)
    unit = (float32(x) + 1.0) / 2.0
    return ops.exp((1.0 - unit) * math.log(min_x) + unit * math.log(max_x))


def soft_limit(x, x_min=0.0, x_max=1.0):
    """Smoothly limits `x` to (x_min, x_max): softplus(x) + x_min - softplus(x - (x_max - x_min)).

    Tends to x_min for x -> -inf and to x_max for x -> +inf. Any shape.
    """
    x = float32(x)
    return ops.softplus(x) + x_min - ops.softplus(x - (x_max - x_min))


# ------------------------------------------------------------------------------------------
# Psychoacoustic frequency scales. Frequencies in Hz, any shape.


def hz_to_bark(hz):
    """Hz to the Bark scale, Traunmüller's formula (1990): 26.81 / (1 + 1960 / hz) - 0.53."""
    return 26.81 / (1.0 + 1960.0 / float32(hz)) - 0.53


def bark_to_hz(bark):
    """Bark to Hz, the inverse of `hz_to_bark`: 1960 / (26.81 / (bark + 0.53) - 1)."""
    return 1960.0 / (26.81 / (float32(bark) + 0.53) - 1.0)


def hz_to_mel(hz):
    """Hz to mel, the HTK formula: 2595 log10(1 + hz / 700)."""
    return 2595.0 * log10(1.0 + float32(hz) / 700.0)


def mel_to_hz(mel):
    """Mel to Hz, the inverse of `hz_to_mel`: 700 (10 ** (mel / 2595) - 1)."""
    return 700.0 * (ops.power(10.0, float32(mel) / 2595.0) - 1.0)


def hz_to_erb(hz):
    """Equivalent rectangular bandwidth in Hz of the auditory filter at `hz` (Moore and
    Glasberg, 1996): 0.108 hz + 24.7."""
    return 0.108 * float32(hz) + 24.7
