"""Tests for ddsp_core.core.units against closed-form values and NumPy references."""

import math

import numpy as np
import pytest
from keras import ops

from ddsp_core.core import units
from tests.gradients import gradient

pytestmark = pytest.mark.dsp


def _np(x):
    return ops.convert_to_numpy(x)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


# ------------------------------------------------------------------------------------------
# Decibels.


@pytest.mark.parametrize(
    "amplitude, expected_db",
    [(1.0, 0.0), (0.1, -20.0), (10.0, 20.0), (0.5, 20 * math.log10(0.5)), (1e-3, -60.0), (0.0, -80.0),
     (1e-6, -80.0)],
    ids=["one", "tenth", "ten", "half", "milli", "zero_clipped", "tiny_clipped"])
def test_amplitude_to_db_known_values(amplitude, expected_db):
    db = _np(units.amplitude_to_db(np.array([amplitude], np.float32)))
    np.testing.assert_allclose(db, [expected_db], atol=1e-4)


@pytest.mark.parametrize("range_db", [40.0, 80.0, 120.0], ids=["range40", "range80", "range120"])
def test_amplitude_to_db_range_clips_silence(range_db):
    db = _np(units.amplitude_to_db(np.array([0.0, 1.0]), range_db=range_db))
    np.testing.assert_allclose(db, [-range_db, 0.0], atol=1e-4)


@pytest.mark.parametrize(
    "power, ref_db, expected_db",
    [(1.0, 0.0, 0.0), (1.0, 10.0, -10.0), (100.0, 20.0, 0.0), (1e-3, 10.0, -40.0), (1e-3, -10.0, -20.0),
     (0.0, 0.0, -80.0),
     # Power is floored at -range_db before ref_db is subtracted, then the result is clipped.
     (0.0, -10.0, -70.0), (1e-7, 10.0, -80.0)],
    ids=["unit", "ref10", "ref20_at_ref", "milli_ref10", "milli_ref_neg10", "zero", "zero_ref_neg10",
         "clipped_after_ref"])
def test_power_to_db_with_ref_db(power, ref_db, expected_db):
    db = _np(units.power_to_db(np.array([power], np.float32), ref_db=ref_db))
    np.testing.assert_allclose(db, [expected_db], atol=1e-4)


def test_amplitude_to_db_is_power_to_db_of_square():
    amplitude = np.random.default_rng(0).uniform(0.0, 3.0, size=(4, 7)).astype(np.float32)
    np.testing.assert_allclose(_np(units.amplitude_to_db(amplitude, ref_db=3.0)),
                               _np(units.power_to_db(amplitude**2, ref_db=3.0)), atol=1e-5)
    expected = np.maximum(20 * np.log10(np.maximum(amplitude.astype(np.float64), 1e-4)) - 3.0, -80.0)
    np.testing.assert_allclose(_np(units.amplitude_to_db(amplitude, ref_db=3.0)), expected, atol=1e-3)


@pytest.mark.parametrize("db, amplitude", [(0.0, 1.0), (-20.0, 0.1), (20.0, 10.0), (-6.0, 10 ** (-0.3)),
                                           (-80.0, 1e-4)],
                         ids=["0dB", "-20dB", "+20dB", "-6dB", "-80dB"])
def test_db_to_amplitude_known_values(db, amplitude):
    np.testing.assert_allclose(_np(units.db_to_amplitude(np.array([db]))), [amplitude], rtol=1e-5)
    np.testing.assert_allclose(_np(units.db_to_power(np.array([db]))), [amplitude**2], rtol=1e-5)


@pytest.mark.parametrize("shape", [(13,), (2, 5), (2, 3, 4)], ids=["rank1", "rank2", "rank3"])
def test_db_amplitude_round_trip(shape):
    db = np.random.default_rng(1).uniform(-79.0, 30.0, size=shape).astype(np.float32)
    amplitude = units.db_to_amplitude(db)
    assert tuple(amplitude.shape) == shape
    np.testing.assert_allclose(_np(units.amplitude_to_db(amplitude)), db, atol=1e-3)
    amplitude = np.random.default_rng(2).uniform(1e-3, 10.0, size=shape).astype(np.float32)
    np.testing.assert_allclose(_np(units.db_to_amplitude(units.amplitude_to_db(amplitude))), amplitude, rtol=1e-4)


# ------------------------------------------------------------------------------------------
# MIDI and Hz.


@pytest.mark.parametrize("hz, midi", [(440.0, 69.0), (880.0, 81.0), (220.0, 57.0), (261.6256, 60.0),
                                      (8.175799, 0.0), (0.0, 0.0), (4.0, 0.0)],
                         ids=["A4", "A5", "A3", "C4", "note0", "zero_hz", "below_note0"])
def test_hz_to_midi_known_values(hz, midi):
    np.testing.assert_allclose(_np(units.hz_to_midi(np.array([hz], np.float32))), [midi], atol=1e-4)


@pytest.mark.parametrize("midi, hz", [(69.0, 440.0), (60.0, 261.6256), (81.0, 880.0), (0.0, 8.175799),
                                      (127.0, 12543.854)],
                         ids=["A4", "C4", "A5", "note0", "note127"])
def test_midi_to_hz_known_values(midi, hz):
    np.testing.assert_allclose(_np(units.midi_to_hz(np.array([midi], np.float32))), [hz], rtol=1e-5)


def test_midi_zero_silence():
    notes = np.array([0.0, 0.5, 60.0, 69.0], np.float32)
    expected = 440.0 * 2.0 ** ((notes - 69.0) / 12.0)
    np.testing.assert_allclose(_np(units.midi_to_hz(notes)), expected, rtol=1e-5)
    silenced = _np(units.midi_to_hz(notes, midi_zero_silence=True))
    assert silenced[0] == 0.0
    np.testing.assert_allclose(silenced[1:], expected[1:], rtol=1e-5)


def test_hz_midi_round_trip():
    notes = np.linspace(1.0, 127.0, 50, dtype=np.float32).reshape(2, 25)
    np.testing.assert_allclose(_np(units.hz_to_midi(units.midi_to_hz(notes))), notes, atol=2e-4)
    hz = np.geomspace(20.0, 8000.0, 30).astype(np.float32)
    np.testing.assert_allclose(_np(units.midi_to_hz(units.hz_to_midi(hz))), hz, rtol=2e-5)


@pytest.mark.parametrize(
    "midi_min, midi_max", [(20.0, 90.0), (0.0, 127.0), (40.0, 41.0)], ids=["default", "full", "narrow"])
def test_unit_midi_round_trip(midi_min, midi_max):
    unit = np.linspace(0.0, 1.0, 11, dtype=np.float32)
    midi = _np(units.unit_to_midi(unit, midi_min=midi_min, midi_max=midi_max))
    np.testing.assert_allclose(midi, midi_min + (midi_max - midi_min) * unit, atol=1e-5)
    np.testing.assert_allclose(_np(units.midi_to_unit(midi, midi_min=midi_min, midi_max=midi_max)), unit, atol=1e-5)


def test_unit_midi_defaults_and_clip():
    np.testing.assert_allclose(_np(units.unit_to_midi(np.array([0.0, 0.5, 1.0]))), [20.0, 55.0, 90.0], atol=1e-5)
    np.testing.assert_allclose(_np(units.unit_to_midi(np.array([-0.5, 1.5]))), [-15.0, 125.0], atol=1e-5)
    np.testing.assert_allclose(_np(units.unit_to_midi(np.array([-0.5, 1.5]), clip=True)), [20.0, 90.0], atol=1e-5)
    np.testing.assert_allclose(_np(units.midi_to_unit(np.array([10.0, 100.0]))), [-1 / 7, 80 / 70], atol=1e-6)
    np.testing.assert_allclose(_np(units.midi_to_unit(np.array([10.0, 100.0]), clip=True)), [0.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("hz_min, hz_max", [(20.0, 8000.0), (100.0, 400.0)], ids=["20_8000", "100_400"])
def test_unit_hz_round_trip(hz_min, hz_max):
    unit = np.linspace(0.0, 1.0, 9, dtype=np.float32)
    hz = _np(units.unit_to_hz(unit, hz_min, hz_max))
    # Linear in MIDI = geometric in Hz.
    np.testing.assert_allclose(hz, hz_min * (hz_max / hz_min) ** unit.astype(np.float64), rtol=1e-4)
    np.testing.assert_allclose(_np(units.hz_to_unit(hz, hz_min, hz_max)), unit, atol=1e-5)
    np.testing.assert_allclose(_np(units.hz_to_unit(np.array([hz_min / 2, hz_max * 2]), hz_min, hz_max, clip=True)),
                               [0.0, 1.0], atol=1e-6)


# ------------------------------------------------------------------------------------------
# exp_sigmoid.


@pytest.mark.parametrize(
    "exponent, max_value, threshold",
    [(10.0, 2.0, 1e-7), (math.e, 1.0, 0.0), (2.0, 3.0, 1e-3), (100.0, 0.5, 1e-2)],
    ids=["defaults", "plain_sigmoid", "exp2_max3", "exp100_max_half"])
def test_exp_sigmoid_closed_form(exponent, max_value, threshold):
    x = np.linspace(-8.0, 8.0, 33, dtype=np.float32).reshape(3, 11)
    expected = max_value * _sigmoid(x) ** math.log(exponent) + threshold
    got = _np(units.exp_sigmoid(x, exponent=exponent, max_value=max_value, threshold=threshold))
    assert got.shape == x.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_exp_sigmoid_defaults():
    np.testing.assert_allclose(_np(units.exp_sigmoid(np.array([0.0])))[0], 2.0 * 0.5 ** math.log(10.0) + 1e-7,
                               rtol=1e-6)
    extremes = _np(units.exp_sigmoid(np.array([-50.0, -20.0, 20.0, 50.0], np.float32))).astype(np.float64)
    assert np.all(extremes > 1e-7 - 1e-12) and np.all(extremes <= 2.0 + 1e-7)
    np.testing.assert_allclose(extremes[:2], 1e-7, rtol=1e-2)  # sigmoid(-20) ** 2.3 is ~1e-20
    np.testing.assert_allclose(extremes[2:], 2.0, rtol=1e-6)
    # Monotonic.
    ramp = _np(units.exp_sigmoid(np.linspace(-10.0, 10.0, 101)))
    assert np.all(np.diff(ramp) > 0)


# ------------------------------------------------------------------------------------------
# Gradients.


def test_gradients_finite_nonzero():
    x = np.linspace(-5.0, 5.0, 11, dtype=np.float32)
    (d_x,) = gradient(units.exp_sigmoid, x)
    s = _sigmoid(x)
    power = math.log(10.0)
    expected = 2.0 * power * s ** (power - 1.0) * s * (1.0 - s)
    assert np.all(np.isfinite(d_x)) and np.all(d_x > 0)
    np.testing.assert_allclose(d_x, expected, rtol=1e-4)

    amplitude = np.array([0.01, 0.1, 0.5, 1.0, 4.0], np.float32)
    (d_amplitude,) = gradient(units.amplitude_to_db, amplitude)
    assert np.all(np.isfinite(d_amplitude)) and np.all(d_amplitude != 0)
    np.testing.assert_allclose(d_amplitude, 20.0 / (amplitude * math.log(10.0)), rtol=1e-4)

    hz = np.array([110.0, 440.0, 1000.0], np.float32)
    (d_hz,) = gradient(units.hz_to_midi, hz)
    np.testing.assert_allclose(d_hz, 12.0 / (hz * math.log(2.0)), rtol=1e-4)


# ------------------------------------------------------------------------------------------
# Logarithms, bounded scalings and psychoacoustic scales.


@pytest.mark.parametrize("base", [2.0, 10.0, math.e, 0.5], ids=["two", "ten", "e", "half"])
def test_logb_closed_form_and_nonpositive_stand_in(base):
    x = np.array([1e-8, 0.3, 1.0, 8.0, 1000.0], np.float32)
    np.testing.assert_allclose(_np(units.logb(x, base)), np.log(x.astype(np.float64)) / math.log(base), rtol=1e-5)
    # Entries <= 0 read as eps.
    np.testing.assert_allclose(_np(units.logb(np.array([0.0, -3.0]), base, eps=1e-3)),
                               [math.log(1e-3) / math.log(base)] * 2, rtol=1e-5)
    np.testing.assert_allclose(_np(units.log10(np.array([100.0, 0.0]))), [2.0, -5.0], rtol=1e-6)


@pytest.mark.parametrize("base", [1, 0.0, -2.0], ids=["one", "zero", "negative"])
def test_logb_bad_base(base):
    with pytest.raises(ValueError, match="base must be a positive number other than 1"):
        units.logb(2.0, base)


def test_db_conversions_with_numpy():
    amplitude = np.array([0.0, 1e-3, 0.5, 2.0], np.float32)
    db = units.amplitude_to_db(amplitude, ref_db=1.0, use_tf=False)
    assert isinstance(db, np.ndarray)
    np.testing.assert_allclose(db, _np(units.amplitude_to_db(amplitude, ref_db=1.0)), atol=1e-4)
    power = units.power_to_db(amplitude, range_db=40.0, use_tf=False)
    np.testing.assert_allclose(power, [-40.0, -30.0, 10 * math.log10(0.5), 10 * math.log10(2.0)], atol=1e-4)


def test_sym_exp_sigmoid_is_symmetric_exp_sigmoid():
    x = np.linspace(-6.0, 6.0, 13, dtype=np.float32)
    got = _np(units.sym_exp_sigmoid(x, width=4.0))
    expected = 2.0 * _sigmoid(4.0 * (np.abs(x) / 2.0 - 1.0)) ** math.log(10.0) + 1e-7
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(got, got[::-1], rtol=1e-6)


def test_log_scale_maps_ends_and_middle():
    got = _np(units.log_scale(np.array([-1.0, 0.0, 1.0, 0.5]), 20.0, 2000.0))
    np.testing.assert_allclose(got, [20.0, 200.0, 2000.0, 20.0 * 100.0 ** 0.75], rtol=1e-5)
    with pytest.raises(ValueError, match="min_x must be a positive number"):
        units.log_scale(0.0, 0.0, 1.0)


def test_soft_limit_bounds():
    x = np.array([-1e4, -3.0, 0.0, 1.5, 3.0, 1e4], np.float32)
    got = _np(units.soft_limit(x, x_min=-1.0, x_max=2.0))
    softplus = lambda v: np.logaddexp(0.0, v)
    np.testing.assert_allclose(got, softplus(x) - 1.0 - softplus(x - 3.0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[[0, -1]], [-1.0, 2.0], atol=1e-5)
    assert np.all(np.diff(got) > 0)


@pytest.mark.parametrize(
    "hz, bark, mel",
    # Bark: 26.81 / (1 + 1960 / f) - 0.53; mel: 2595 log10(1 + f / 700) (1000 Hz is 1000 mel).
    [(1000.0, 26.81 / (1 + 1.96) - 0.53, 1000.0), (700.0, 26.81 / (1 + 2.8) - 0.53, 2595 * math.log10(2.0)),
     (4000.0, 26.81 / 1.49 - 0.53, 2595 * math.log10(1 + 4000 / 700))],
    ids=["1k", "700", "4k"])
def test_bark_mel_erb_closed_form_and_inverses(hz, bark, mel):
    np.testing.assert_allclose(_np(units.hz_to_bark(hz)), bark, rtol=1e-5)
    np.testing.assert_allclose(_np(units.hz_to_mel(hz)), mel, rtol=1e-3 if hz == 1000.0 else 1e-5)
    np.testing.assert_allclose(_np(units.bark_to_hz(units.hz_to_bark(hz))), hz, rtol=1e-4)
    np.testing.assert_allclose(_np(units.mel_to_hz(units.hz_to_mel(hz))), hz, rtol=1e-4)
    np.testing.assert_allclose(_np(units.hz_to_erb(hz)), 0.108 * hz + 24.7, rtol=1e-6)


def test_gradients_of_scalings_and_scales():
    x = np.linspace(-3.0, 3.0, 7, dtype=np.float32)
    (d_soft,) = gradient(lambda v: units.soft_limit(v, 0.0, 1.0), x)
    np.testing.assert_allclose(d_soft, _sigmoid(x) - _sigmoid(x - 1.0), rtol=1e-4)
    (d_log,) = gradient(lambda v: units.log_scale(v, 10.0, 1000.0), x / 3.0)
    expected = np.exp(np.log(10.0) + (x / 3.0 + 1.0) / 2.0 * math.log(100.0)) * math.log(100.0) / 2.0
    np.testing.assert_allclose(d_log, expected, rtol=1e-4)
    hz = np.array([100.0, 1000.0, 5000.0], np.float32)
    (d_mel,) = gradient(units.hz_to_mel, hz)
    np.testing.assert_allclose(d_mel, 2595.0 / (math.log(10.0) * (700.0 + hz)), rtol=1e-4)
    for fn in (units.hz_to_bark, units.hz_to_erb, units.sym_exp_sigmoid, lambda v: units.logb(v, 3.0)):
        (grad,) = gradient(fn, hz / 1000.0)
        assert np.all(np.isfinite(grad)) and np.all(grad != 0)
