"""Every benchmark's smoke mode runs: `python -m benchmarks.X --smoke` exits 0 and prints its table.

Benchmarks are never part of the test suite; their smallest configuration is, so a change that
breaks one (a moved module, a renamed field) fails here instead of on the next measurement.
Each runs in a fresh process from the repository root, as documented. compare_magenta's smoke
runs our side of its train_step row (magenta's model as our trainer builds it), which once failed
unseen; time_to_quality needs magenta for every row, so its smoke checks imports and settings only.
The slow ones (training, or the pipeline's steps each in its own process: 10 s to 7 min on 2
cores) are marked `slow` (run with --slow); the rest take about 55 s together on 2 cores.
"""

import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (module, extra arguments, text (or texts) the printed table must contain, marks)
CASES = [
    ("bench_dsp", [], "Harmonic fwd [2,50,60] -> [2,3200]", []),
    ("bench_crepe", [], "tiny", []),
    ("bench_train", [], "tf.function", [pytest.mark.slow]),  # compare_magenta's smoke trains a step too
    ("compare_magenta", [], ("harmonic synth fwd+bwd", "solo train step"), []),  # Our side only.
    ("profile_train_step", [], "spectral_loss", [pytest.mark.slow]),
    ("bench_play", [], "offline render, vst model", [pytest.mark.slow]),
    ("time_to_quality", [], "time_to_quality smoke", []),
    ("bench_prepare", [], "job  tiny", []),
    ("eval_crepe", [], "smoke tones   tiny@50", []),  # ~7 s: two synthesized batches, tiny CREPE.
    ("f0_floor", [], "tiny@250 (conf >= 0.5)   tone", []),  # ~7 s: the same batches, three sources.
    # ~5 s: the 5th harmonic made 12 dB louder reads +12 dB, the others +0.
    ("note_harmonics", [], "smoke   2   difference   +0   +0   +0   +0   +12   +0   +0   +0", []),
    # Slow, to keep `make test` under its 25 minutes: bench_train, profile_train_step and bench_play above
    # (10-13 s each); and (seconds on 2 cores, while another job ran): 14 (two models built), 35 (CREPE on 4 files and
    # training), 420 (two prepare jobs, a train and two evals, each its own process).
    ("precision_loss_curve", [], "first loss: float32", [pytest.mark.slow]),
    ("quality", [], "material_gain_dry_small", [pytest.mark.slow]),
    ("seeds", [], "Seeds 0, quick preset (2 steps)", [pytest.mark.slow]),
    ("bench_scale", [], "prepare  single-0.25", [pytest.mark.slow]),  # ~70 s: two prepare jobs, a train step, evals
]


def run_smoke(module, extra, timeout_s=600):
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "tensorflow"), TF_CPP_MIN_LOG_LEVEL="2")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", "--smoke", *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout_s)
    return done, time.perf_counter() - started


@pytest.mark.parametrize("module, extra, expected",
                         [pytest.param(m, e, x, marks=marks, id=m) for m, e, x, marks in CASES])
def test_smoke_mode_runs_and_prints_its_table(module, extra, expected):
    done, seconds = run_smoke(module, extra)
    tail = (done.stdout[-3000:] + "\n--- stderr ---\n" + done.stderr[-3000:])
    assert done.returncode == 0, f"python -m benchmarks.{module} --smoke exited {done.returncode} " \
                                 f"after {seconds:.0f} s:\n{tail}"
    for text in [expected] if isinstance(expected, str) else expected:
        assert text in done.stdout, f"benchmarks.{module} --smoke printed no {text!r}:\n{tail}"


def test_every_benchmark_module_has_a_smoke_case():
    """A new benchmark gets a row above (or this fails): every module of benchmarks/ but the helpers."""
    helpers = {"__init__", "common", "compare_inputs"}
    modules = {name[:-3] for name in os.listdir(os.path.join(ROOT, "benchmarks"))
               if name.endswith(".py") and name[:-3] not in helpers}
    assert modules == {case[0] for case in CASES}
