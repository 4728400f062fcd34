"""One benchmark case on magenta's ddsp 3.7.0 (run by benchmarks/compare_magenta.py in the magenta venv).

    PYTHONPATH=<repository root> python conformance/magenta_side/run_case.py CASE OUT.json [--batch B ...]

Needs TF_USE_LEGACY_KERAS=1 and PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python, and the repository
root on PYTHONPATH for `benchmarks.compare_inputs` (conformance.magenta_venv.magenta_env(ROOT) sets
all three). Run as a script, so this folder is first on sys.path: `import crepe` finds the
stand-in (crepe/__init__.py).
"""

import argparse
import json
import os
import subprocess
import sys
import time

from benchmarks import compare_inputs as inputs

HERE = os.path.dirname(os.path.abspath(__file__))


def dsp_case(case, args):
    import ddsp
    import numpy as np
    import tensorflow as tf

    data = {k: tf.constant(v) for k, v in inputs.dsp_inputs(args.batch, args.seconds).items()}
    n_samples = inputs.shapes(args.seconds)[1]
    if case == "harmonic":
        synth = ddsp.synths.Harmonic(n_samples=n_samples, sample_rate=inputs.SAMPLE_RATE)
        step = inputs.tf_value_and_grad(lambda a, h, f: synth(a, h, f), 2)
        call = (data["amplitudes"], data["harmonic_distribution"], data["f0_hz"])
    elif case == "noise":
        synth = ddsp.synths.FilteredNoise(n_samples=n_samples, window_size=257)
        step = inputs.tf_value_and_grad(lambda m: synth(m), 1)
        call = (data["noise_magnitudes"],)
    elif case == "reverb":
        reverb = ddsp.effects.Reverb(trainable=False)
        step = inputs.tf_value_and_grad(lambda a, ir: reverb(a, ir), 2)
        call = (data["audio"], data["ir"])
    else:
        loss = ddsp.losses.SpectralLoss(loss_type="L1", mag_weight=1.0, logmag_weight=1.0)
        step = inputs.tf_value_and_grad(lambda a, t: loss(t, a), 1)
        call = (data["audio"], data["target_audio"])
    return inputs.time_runs(lambda: [np.asarray(t) for t in tf.nest.flatten(step(*call))], args.runs)


def _parse_solo_gin(n_samples):
    import ddsp.training
    import gin

    # The gin folder ddsp_run searches (ddsp_run itself needs the uninstallable `hypertune`).
    gin_dir = os.path.join(os.path.dirname(ddsp.training.__file__), "gin")
    gin.add_config_file_search_path(gin_dir)
    with gin.unlock_config():
        gin.parse_config_files_and_bindings(["optimization/base.gin", "models/solo_instrument.gin"],
                                            [f"n_samples = {n_samples}"])


def train_case(args):
    """One step of magenta's solo-instrument model as `ddsp_run --mode=train` runs it."""
    import numpy as np
    import tensorflow as tf
    from ddsp.training import models, train_util, trainers

    _parse_solo_gin(inputs.shapes(args.seconds)[1])
    strategy = train_util.get_strategy()
    with strategy.scope():
        model = models.get_model()
        trainer = trainers.get_trainer_class()(model, strategy)
    batch = {k: tf.constant(v) for k, v in inputs.train_batch(args.batch, args.seconds).items()}
    trainer.build(batch)
    losses = []

    def step():
        losses.append(float(np.asarray(trainer.train_step(batch)["total_loss"])))
    result = inputs.time_runs(step, args.runs)
    result["loss_first_last"] = [losses[0], losses[-1]]
    result["params"] = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    return result


def inference_case(args):
    """Decoder + synth (+ reverb) of the solo model, batch 1, as model(features, training=False)."""
    import numpy as np
    import tensorflow as tf
    from ddsp.training import models

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    _parse_solo_gin(inputs.shapes(args.seconds)[1])
    model = models.get_model()
    features = {k: tf.constant(v) for k, v in inputs.train_batch(1, args.seconds).items()}
    call = tf.function(lambda f: model(f, training=False)["audio_synth"])
    return inputs.time_runs(lambda: np.asarray(call(features)), args.runs)


def crepe_case(args):
    """magenta's f0 path: the crepe stand-in's get_activation at 250 frames/s, 'center' padding as compute_f0."""
    import crepe
    from ddsp import spectral_ops

    audio = inputs.test_tone(args.seconds)
    hop = inputs.SAMPLE_RATE // inputs.FRAME_RATE
    padded = spectral_ops.pad(audio, spectral_ops.CREPE_FRAME_SIZE, hop, "center")
    import numpy as np

    padded = np.asarray(padded)
    result = inputs.time_runs(lambda: crepe.get_activation(padded, inputs.SAMPLE_RATE, model_capacity=args.capacity,
                                                           center=False, step_size=1000 / inputs.FRAME_RATE,
                                                           verbose=0), args.runs, budget_s=args.budget, min_runs=2)
    activation = crepe.get_activation(padded, inputs.SAMPLE_RATE, model_capacity=args.capacity, center=False,
                                      step_size=1000 / inputs.FRAME_RATE, verbose=0)
    result["n_frames"] = int(activation.shape[0])
    return result


def prepare_case(args):
    """magenta's `ddsp_prepare_tfrecord` command on the given files (a fresh process per run)."""
    import glob
    import resource
    import statistics
    import tempfile

    env = dict(os.environ, CREPE_STANDIN_CAPACITY=args.capacity,
               PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]))
    times = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, "-m", "ddsp.training.data_preparation.ddsp_prepare_tfrecord",
                       f"--input_audio_filepatterns={args.files}", f"--output_tfrecord_path={out}/train.tfrecord",
                       "--num_shards=1", f"--pipeline_options={args.pipeline_options}"]
            start = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if done.returncode:
                raise RuntimeError(f"magenta prepare failed ({done.returncode}): {done.stderr[-2000:]}")
            written = glob.glob(f"{out}/train.tfrecord*")
            if not written:
                raise RuntimeError(f"magenta prepare wrote nothing: {done.stderr[-2000:]}")
    return {"times_s": times, "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "first_s": None, "other_load": None,
            "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("case")
    parser.add_argument("out")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--capacity", default="full")
    parser.add_argument("--precision", default="float32", help="ignored (ours only)")
    parser.add_argument("--budget", type=float, default=None)
    parser.add_argument("--files", default="")
    parser.add_argument("--pipeline_options", default="--runner=DirectRunner")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.case in ("harmonic", "noise", "reverb", "spectral_loss"):
        result = dsp_case(args.case, args)
    elif args.case == "train_step":
        result = train_case(args)
    elif args.case == "inference":
        result = inference_case(args)
    elif args.case == "crepe":
        result = crepe_case(args)
    elif args.case == "prepare":
        result = prepare_case(args)
    else:
        raise SystemExit(f"unknown case {args.case}")
    import tensorflow as tf

    import ddsp

    result.update(peak_rss_mb=inputs.peak_rss_mb(), wall_s=time.perf_counter() - start,
                  versions={"ddsp": ddsp.__version__, "tensorflow": tf.__version__})
    with open(args.out, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
