"""Training health (health.py): the figures against closed forms, and the collapse guard in
train_util.train catching a forced collapse, rolling back and failing clearly when its
retries run out."""

import keras
import numpy as np
import pytest

from ddsp_core.training import health, train_util
from tests.training_runs import clear_gin, read_json
from tests.training.test_seeding import tiny_train
from tests.training.test_summaries import read_events

pytestmark = pytest.mark.usefixtures("clean_state")

N_FRAMES, HOP = 10, 64


def _features(confidence=1.0, loudness_db=-20.0):
    return {"f0_hz": np.full((1, N_FRAMES), 220.0), "f0_confidence": np.full((1, N_FRAMES), confidence),
            "loudness_db": np.full((1, N_FRAMES), loudness_db)}


def _parts(harmonic_rms, noise_rms, distribution, amplitude=0.1):
    n_samples = N_FRAMES * HOP
    sign = np.where(np.arange(n_samples) % 2 == 0, 1.0, -1.0)[None]  # A square wave: rms = amplitude.
    return {"harmonic": harmonic_rms * sign, "noise": noise_rms * sign,
            "amplitudes": np.full((1, N_FRAMES), amplitude),
            "harmonic_distribution": np.broadcast_to(np.asarray(distribution, float), (1, N_FRAMES, len(distribution)))}


@pytest.mark.dsp
def test_figures_match_closed_forms():
    figures = health.figures(_parts(0.3, 0.1, [0.5, 0.25, 0.25, 0.0]), _features())
    assert figures["harmonic_share"] == pytest.approx(0.09 / (0.09 + 0.01))
    assert figures["top_harmonic_weight"] == pytest.approx(0.5)
    assert figures["harmonic_centroid"] == pytest.approx(1 * 0.5 + 2 * 0.25 + 3 * 0.25)
    assert figures["loud_amplitude_db"] == pytest.approx(-20.0)
    assert figures["voiced_frames"] == N_FRAMES
    unvoiced = health.figures(_parts(0.3, 0.1, [1.0]), _features(confidence=0.1))
    assert unvoiced["voiced_frames"] == 0 and np.isnan(unvoiced["harmonic_share"])


@pytest.mark.dsp
@pytest.mark.parametrize("parts, reason", [
    (_parts(0.01, 0.3, [0.5, 0.5]), "harmonic share"),
    (_parts(0.3, 0.01, [0.5, 0.5], amplitude=1e-4), "fell silent"),
    (_parts(0.3, 0.01, [0.0] * 39 + [1.0]), "one high partial"),
])
def test_criteria_name_each_kind_of_collapse(parts, reason):
    criteria = health.CollapseCriteria()
    assert criteria.reasons(health.figures(_parts(0.3, 0.01, [0.6, 0.1, 0.3]), _features())) == []
    found = criteria.reasons(health.figures(parts, _features()))
    assert len(found) == 1 and reason in found[0]


class ForceCollapse(keras.callbacks.Callback):
    """Silences the harmonic synth after `at_step` (the decoder's amplitude output pinned at -30,
    where exp_sigmoid is flat): once, or after every roll-back too with `every_time`."""

    def __init__(self, at_step, every_time=False):
        super().__init__()
        self.at_step, self.every_time, self.step, self.times = at_step, every_time, 0, 0

    def on_train_begin(self, logs=None):
        self.step = self.at_step - 1 if self.times else 0  # A roll-back restarts fit at the healthy step.

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step == self.at_step and (self.every_time or self.times == 0):
            dense = self.model.decoder.dense_out
            kernel, bias = (keras.ops.convert_to_numpy(v).copy() for v in (dense.kernel, dense.bias))
            kernel[:, 0], bias[0] = 0.0, -30.0
            dense.kernel.assign(kernel)
            dense.bias.assign(bias)
            self.times += 1


GUARD = ("HealthGuard.every_steps=2", "HealthGuard.check_from_step=2", "HealthGuard.max_retries=1",
         "train.seed=3")


def test_the_guard_catches_a_forced_collapse_and_rolls_back(tfrecords_1s, tmp_path):
    forced = ForceCollapse(at_step=3)
    result, losses = tiny_train(tfrecords_1s, tmp_path / "run", *GUARD, steps=8, callbacks=[forced])

    assert forced.times == 1
    assert result["status"] == "finished" and result["step"] == 8
    state = read_json(tmp_path / "run" / "train_state.json")
    assert state["status"] == "finished" and state["guard"]["retries"] == 1
    event = state["guard"]["events"][0]
    # Unhealthy at step 4, still (and not recovering) at step 6: rolled back to step 2's state.
    assert (event["step"], event["rolled_back_to"], event["learning_rate_scale"]) == (6, 2, 0.5)
    assert any("fell silent" in reason for reason in event["reasons"])
    assert event["health"]["loud_amplitude_db"] < -100
    # After the roll-back the model is healthy again and trains to the end: 6 + 6 steps run in all.
    assert state["health"]["step"] == 8 and state["health"]["loud_amplitude_db"] > -50
    assert len(losses) == 6 + 6
    # TensorBoard: the figures at every probe (steps 2, 4 and 6 of the first try, then 4, 6, 8 after
    # the roll-back to step 2) and the retry.
    scalars = {(step, tag): float(value) for step, tag, _, _, value in read_events(tmp_path / "run" / "summaries" / "train")}
    assert {step for step, tag in scalars if tag == "health/harmonic_share"} == {2, 4, 6, 8}
    assert scalars[(6, "guard/retries")] == 1.0
    assert all(0.0 <= scalars[(step, "health/harmonic_share")] <= 1.0 for step in (2, 6, 8))


def test_the_guard_fails_clearly_when_its_retries_run_out(tfrecords_1s, tmp_path):
    with pytest.raises(train_util.TrainingError, match=r"collapsed at step 6 .*after 1 roll-back"):
        tiny_train(tfrecords_1s, tmp_path / "run", *GUARD, steps=8, callbacks=[ForceCollapse(3, every_time=True)])
    state = read_json(tmp_path / "run" / "train_state.json")
    assert state["status"] == "collapsed"
    assert [event["rolled_back_to"] for event in state["guard"]["events"]] == [2, None]
    clear_gin()


@pytest.mark.dsp
def test_voiced_frames_reach_40_db_below_the_peak_loud_ones_20():
    features = _features()
    features["loudness_db"] = np.array([[-10.0] * 4 + [-40.0] * 3 + [-60.0] * 3])  # 0, 30 and 50 dB below the peak.
    parts = _parts(0.3, 0.1, [1.0])
    parts["amplitudes"] = np.array([[0.1] * 4 + [0.01] * 6])  # -20 dB on the loud frames, -40 dB elsewhere.
    figures = health.figures(parts, features)
    assert figures["voiced_frames"] == 7
    assert figures["loud_amplitude_db"] == pytest.approx(-20.0)
