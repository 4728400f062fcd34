"""Tests for ddsp_core.training.trainers: the learning-rate schedule, against its closed form."""

import pytest

from ddsp_core.training import trainers


@pytest.mark.parametrize("step, ramp", [(0, 1 / 100), (49, 50 / 100), (99, 1.0), (5000, 1.0)])
def test_warmup_ramps_up_linearly_then_decays_exponentially(step, ramp):
    trainer = trainers.Trainer(learning_rate=1e-3, lr_decay_steps=10000, lr_decay_rate=0.98, warmup_steps=100)
    assert trainer.learning_rate_at(step) == pytest.approx(1e-3 * 0.98 ** (step / 10000) * ramp, rel=1e-5)


def test_no_warmup_is_plain_exponential_decay():
    trainer = trainers.Trainer(learning_rate=3e-4, lr_decay_steps=10000, lr_decay_rate=0.98)
    assert trainer.learning_rate_at(0) == pytest.approx(3e-4, rel=1e-6)
    assert trainer.learning_rate_at(10000) == pytest.approx(3e-4 * 0.98, rel=1e-5)


@pytest.mark.parametrize("warmup_steps", [-1, 1.5, True])
def test_bad_warmup_is_an_error(warmup_steps):
    with pytest.raises(ValueError, match="warmup_steps"):
        trainers.Trainer(warmup_steps=warmup_steps)
