"""Inputs and case definitions shared by both sides of compare_magenta.py (NumPy and stdlib only).

Both workers (ours in the project's venv, magenta's ddsp 3.7.0 in its own venv) build
their inputs here from the same seeds, so every row compares identical inputs.
"""

import resource
import statistics
import time

from benchmarks import bench_train  # Stdlib-only at import: synthetic_batch.
from benchmarks import common

SAMPLE_RATE, FRAME_RATE = 16000, 250
N_HARMONICS, N_BANDS, REVERB_LENGTH = 60, 65, 48000
CREPE_CAPACITIES = ("tiny", "small", "medium", "large", "full")


def shapes(seconds):
    return int(round(seconds * FRAME_RATE)), int(round(seconds * SAMPLE_RATE))


def dsp_inputs(batch, seconds, seed=0):
    """Raw controls and audio for the DSP rows (before scale_fn, as a decoder outputs them)."""
    import numpy as np

    n_frames, n_samples = shapes(seconds)
    rng = np.random.default_rng(seed)
    return {
        "amplitudes": rng.normal(size=(batch, n_frames, 1)).astype("float32"),
        "harmonic_distribution": rng.normal(size=(batch, n_frames, N_HARMONICS)).astype("float32"),
        "f0_hz": rng.uniform(100.0, 1000.0, size=(batch, n_frames, 1)).astype("float32"),
        "noise_magnitudes": rng.normal(size=(batch, n_frames, N_BANDS)).astype("float32"),
        "target_audio": rng.uniform(-0.5, 0.5, size=(batch, n_samples)).astype("float32"),
        "audio": rng.uniform(-0.5, 0.5, size=(batch, n_samples)).astype("float32"),
        "ir": (1e-3 * rng.normal(size=(batch, REVERB_LENGTH)) * np.exp(-np.arange(REVERB_LENGTH) / 8000.0)
               ).astype("float32"),
    }


def train_batch(batch, seconds):
    """The synthetic training batch of bench_train.py: audio, f0_hz, f0_confidence, loudness_db."""
    return bench_train.synthetic_batch(batch, seconds)


def test_tone(seconds):
    """The CREPE input of bench_crepe.py: a harmonic tone gliding up an octave from 220 Hz, [n_samples]."""
    import numpy as np

    n_samples = round(seconds * SAMPLE_RATE)
    f0 = 220.0 * 2.0 ** (np.arange(n_samples) / SAMPLE_RATE / seconds)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    harmonics = np.arange(1, 9)
    audio = (np.sin(phase[:, None] * harmonics[None, :]) / harmonics[None, :]).sum(axis=1)
    return (0.5 * audio / np.abs(audio).max()).astype(np.float32)


def tf_value_and_grad(fn, n_watched):
    """A tf.function: (mean square of fn(*args), or fn's scalar; its gradient w.r.t. the first n_watched
    args). Both sides of compare_magenta time fwd+bwd through this one function, so they time the same."""
    import tensorflow as tf

    @tf.function
    def step(*args):
        with tf.GradientTape() as tape:
            for tensor in args[:n_watched]:
                tape.watch(tensor)
            out = fn(*args)
            value = tf.reduce_mean(out * out) if len(out.shape) else out
        return value, tape.gradient(value, list(args[:n_watched]))
    return step


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_runs(run, runs, idle_threshold=-1.0, max_wait=0.0, budget_s=None, min_runs=3):
    """Calls run() once untimed, then times it `runs` times (fewer past budget_s once min_runs are done).

    Returns {'first_s', 'times_s', 'median_s', 'min_s', 'max_s', 'cpu_s' (median CPU seconds of this
    process per run: less sensitive than wall time to other jobs on the machine), 'other_load'}.
    """
    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    if idle_threshold >= 0 and max_wait > 0:
        common.wait_for_idle(idle_threshold, max_wait)
    times, cpu_times, mark = [], [], (common.busy_cpu_s(), common.own_cpu_s(), time.perf_counter())
    for index in range(runs):
        if budget_s is not None and index >= min_runs and sum(times) > budget_s:
            break
        cpu_start, start = common.own_cpu_s(), time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
        cpu_times.append(common.own_cpu_s() - cpu_start)
    return {"first_s": first, "times_s": times, "median_s": statistics.median(times), "min_s": min(times),
            "max_s": max(times), "cpu_s": statistics.median(cpu_times), "other_load": common.other_load(*mark)}
