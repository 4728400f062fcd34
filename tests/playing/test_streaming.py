"""Block-wise streaming synthesis equals whole-signal synthesis (tests/playing/conftest.py model)."""

import numpy as np
import pytest
from keras import ops

from ddsp_core.core.convolution import frequency_filter
from ddsp_core.core.oscillators import harmonic_hops, harmonic_synthesis
from ddsp_core.playing.instrument import load_instrument
from ddsp_core.playing.streaming import StreamingSynth, audible_harmonic_hops, block_frames, render
from tests.playing.conftest import build_known_instrument

N_FRAMES = 230


def _features(seed=1, n_frames=N_FRAMES, n_voices=1):
    """A wandering pitch and level (and silences), [n_voices, n_frames]."""
    rng = np.random.default_rng(seed)
    f0 = 300.0 * 2 ** (np.cumsum(rng.normal(0, 0.1, (n_voices, n_frames)), axis=1) / 12)
    level = np.clip(-40 + np.cumsum(rng.normal(0, 3, (n_voices, n_frames)), axis=1), -80, 0)
    return {"f0_hz": f0.astype("float32"), "loudness_db": level.astype("float32")}


@pytest.fixture(scope="module", params=["dry", "reverb"])
def instrument(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"stream_{request.param}")
    extra = ["effects/reverb.gin"] if request.param == "reverb" else []
    # A random reverb of 0.1 s, so that its tail crosses many blocks.
    build_known_instrument(folder, extra_gin=extra, harmonic_bias=1.0, extra_params=["Reverb.reverb_length = 1600"])
    loaded = load_instrument(str(folder))
    if request.param == "reverb":
        reverb = loaded.model.processor_group.dag[-1][0]
        ir = np.random.default_rng(0).normal(0, 0.05, reverb._ir.shape) * np.exp(-np.arange(reverb._ir.shape[0]) / 800)
        reverb._ir.assign(ir.astype("float32"))
    return loaded


@pytest.mark.parametrize("chunk_frames", [1, 7, 64], ids=lambda n: f"blocks_of_{n}")
def test_blocks_equal_whole(instrument, chunk_frames):
    features = _features()
    synth = StreamingSynth(instrument.model, instrument.hop_size, seed=3)
    whole = render(synth, features, chunk_frames=N_FRAMES + 1)  # one block: the input and the frame pending
    blocks = render(synth, features, chunk_frames=chunk_frames)
    assert whole.shape == (1, N_FRAMES * instrument.hop_size)
    peak = np.abs(whole).max()
    assert peak > 0.05
    np.testing.assert_allclose(blocks, whole, atol=2e-5 * max(1.0, peak))


def test_process_then_flush_equals_render(instrument):
    """One frame per `process` call, then `flush`, renders what `render`'s padded blocks do."""
    features = _features(seed=6)
    synth = StreamingSynth(instrument.model, instrument.hop_size, seed=3)
    rendered = render(synth, features, chunk_frames=100)  # 3 blocks of 80: the last one 70 frames and 10 held
    cut = render(synth, features, chunk_frames=100, fit_blocks=False)  # 3 of 100: the last one 30 and 70 held
    synth.reset()
    pieces = [synth.process({key: value[:, i:i + 1] for key, value in features.items()}) for i in range(N_FRAMES)]
    streamed = np.concatenate(pieces + [synth.flush()], axis=1)
    assert streamed.shape == rendered.shape == cut.shape == (1, N_FRAMES * instrument.hop_size)
    np.testing.assert_allclose(rendered, streamed, atol=2e-5 * max(1.0, np.abs(streamed).max()))
    np.testing.assert_allclose(cut, streamed, atol=2e-5 * max(1.0, np.abs(streamed).max()))


@pytest.mark.parametrize("n_frames, chunk_frames, expected", [
    (467, 100, 95),  # the built-in melody at 50 frames/s: 5 x 95, not 5 x 100
    (231, 100, 80),  # 3 x 77 rounded up to multiples of 5
    (231, 231, 231),  # one block
    (30, 100, 30),  # shorter than one block
    (7, 100, 10),  # rounded up to a multiple of 100 // 20
    (10, 1, 1),
])
def test_block_frames(n_frames, chunk_frames, expected):
    assert block_frames(n_frames, chunk_frames) == expected
    n_blocks = -(-n_frames // expected)
    assert n_blocks == -(-n_frames // chunk_frames)  # as few blocks as chunk_frames allows


@pytest.mark.parametrize("chunk_frames", [46, 230], ids=lambda n: f"blocks_of_{n}")
def test_offline_synth_equals_the_plain_one(instrument, chunk_frames):
    """The offline synth (XLA, decoder work once per distinct input value, only the harmonics below
    Nyquist) renders what the plain one renders, within float32 round-off; held pitches repeat
    values, as MIDI does."""
    features = _features(seed=7)
    features["f0_hz"][:, 50:150] = 440.0
    offline = StreamingSynth(instrument.model, instrument.hop_size, seed=3, jit_compile=True)
    assert offline.per_value
    plain = render(StreamingSynth(instrument.model, instrument.hop_size, seed=3), features, chunk_frames=N_FRAMES)
    blocks = render(offline, features, chunk_frames=chunk_frames)
    np.testing.assert_allclose(blocks, plain, atol=2e-5 * max(1.0, np.abs(plain).max()))
    controls = offline.controls({key: value[:, :40] for key, value in features.items()})
    plain_controls = StreamingSynth(instrument.model, instrument.hop_size).controls(
        {key: value[:, :40] for key, value in features.items()})
    for key, value in plain_controls.items():
        np.testing.assert_allclose(controls[key], value, rtol=1e-5, atol=1e-7)


def _f0_points(case, n_points, rng):
    """f0 control points [2, n_points, 1] (two voices) for `test_audible_harmonics_equal_harmonic_hops`."""
    if case == "glide_across_nyquist":  # harmonics 6..26 reach Nyquist during the glide: the per-sample mask
        f0 = np.concatenate([np.full(n_points // 2, 300.0), np.linspace(300.0, 1400.0, n_points - n_points // 2)])
    elif case == "high_notes":  # 400 Hz: harmonic 20 lies exactly at Nyquist (silent); about 20 of 60 computed
        f0 = np.repeat([400.0, 500.0, 800.0, 421.0], -(-n_points // 4))[:n_points]
    elif case == "low":  # 100 Hz: every harmonic below Nyquist, none masked
        f0 = np.full(n_points, 100.0)
    else:  # "above_nyquist": nothing to compute
        f0 = np.full(n_points, 9000.0)
    second = f0 * 2 ** (rng.normal(0, 0.3, n_points) / 12)  # another voice, wandering
    return np.stack([f0, second])[..., None].astype("float32")


@pytest.mark.parametrize("method", ["linear", "window"])
@pytest.mark.parametrize("case", ["glide_across_nyquist", "high_notes", "low", "above_nyquist"])
def test_audible_harmonics_equal_harmonic_hops(case, method):
    """The offline harmonic synth computes only the harmonics below Nyquist somewhere in the block,
    and renders what `harmonic_hops` renders (all 60 harmonics random, so a harmonic left out shows)."""
    rng = np.random.default_rng(4)
    n_points, hop = 41, 320
    f0 = _f0_points(case, n_points, rng)
    amplitudes = rng.uniform(0.0, 0.05, (2, n_points, 60)).astype("float32")
    phase = np.array([[0.3], [0.9]], "float32")
    expected, expected_phase = harmonic_hops(f0, amplitudes, hop, method, 16000, initial_phase=phase)
    audio, final_phase = audible_harmonic_hops(f0, amplitudes, hop, method, 16000, initial_phase=phase)
    expected = ops.convert_to_numpy(expected)
    assert audio.shape == expected.shape == (2, (n_points - 1) * hop)
    peak = np.abs(expected).max()
    assert (peak == 0.0) == (case == "above_nyquist")
    np.testing.assert_allclose(ops.convert_to_numpy(audio), expected, atol=2e-5 * max(1.0, peak))
    np.testing.assert_allclose(ops.convert_to_numpy(final_phase), ops.convert_to_numpy(expected_phase), atol=1e-7)


def test_whole_equals_the_models_synthesis(instrument):
    """The stream renders what the model's own processors render from the same controls and noise."""
    features = _features(seed=2)
    synth = StreamingSynth(instrument.model, instrument.hop_size, seed=5)
    audio = render(synth, features, chunk_frames=50)
    synth.reset()
    controls = synth.controls(features)
    n_samples = N_FRAMES * instrument.hop_size
    noise = np.random.default_rng(5).uniform(-1, 1, (n_samples, 1)).T.astype("float32")
    harmonic = harmonic_synthesis(controls["f0_hz"], np.ones((1, N_FRAMES, 1), "float32"),
                                  harmonic_distribution=controls["harmonic_amplitudes"], n_samples=n_samples,
                                  sample_rate=16000, amp_resample_method="window")
    expected = harmonic + frequency_filter(noise, controls["noise_magnitudes"], window_size=257)
    reverb = synth.parts.reverb
    if reverb is not None:
        expected = reverb(expected)
    np.testing.assert_allclose(audio, ops.convert_to_numpy(expected), atol=2e-5)


def test_voices_are_independent(instrument):
    """A batch of voices renders each as it renders alone (chords are batches)."""
    features = _features(seed=3, n_voices=2)
    both = render(StreamingSynth(instrument.model, instrument.hop_size, batch_size=2), features, chunk_frames=40)
    synth = StreamingSynth(instrument.model, instrument.hop_size, batch_size=1)
    for voice in range(2):
        alone = render(synth, {key: value[voice:voice + 1] for key, value in features.items()}, chunk_frames=40)
        # Noise differs (drawn per batch); the harmonic part dominates this instrument.
        assert np.sqrt(np.mean((alone[0] - both[voice]) ** 2)) < 0.02 * np.sqrt(np.mean(alone[0] ** 2)) + 1e-3


def test_latency_and_flush(instrument):
    """One frame per call: nothing until the latency has passed, then one hop per frame; flush ends it."""
    features = _features(seed=4, n_frames=10)
    synth = StreamingSynth(instrument.model, instrument.hop_size)
    hop, latency = instrument.hop_size, synth.latency_samples
    # 65 noise bands: FIR filters of 2 * 64 - 1 = 127 taps (window_size 257 is more than that), 63 late.
    assert synth.ir_size == 127 and latency == max(hop, 63) == 64
    lengths = [synth.process({key: value[:, i:i + 1] for key, value in features.items()}).shape[1]
               for i in range(10)]
    assert sum(lengths) == 10 * hop - latency
    assert lengths[-1] == hop
    assert synth.flush().shape[1] == latency


def test_a_reverb_made_at_each_call_is_refused_by_name():
    """ExpDecayReverb and FilteredNoiseReverb are Reverbs whose impulse response the model makes
    per call: streaming says so, rather than calling it a reverb 'given at call time'."""
    import types

    from ddsp_core import effects, processors, synths
    from ddsp_core.playing.streaming import StreamingError, synth_parts

    group = types.SimpleNamespace(dag=[(synths.Harmonic(n_samples=160), ["amps", "harmonic_distribution", "f0_hz"]),
                                       (synths.FilteredNoise(n_samples=160), ["noise_magnitudes"]),
                                       (processors.Add(), ["filtered_noise/signal", "harmonic/signal"]),
                                       (effects.ExpDecayReverb(trainable=True), ["add/signal"])])
    with pytest.raises(StreamingError, match=r"ExpDecayReverb \('exp_decay_reverb'\), whose impulse response"):
        synth_parts(types.SimpleNamespace(processor_group=group))
