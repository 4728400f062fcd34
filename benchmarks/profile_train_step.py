"""Where the solo-instrument train step spends its time and memory, part by part (TensorFlow, CPU).

Each part of `models/solo_instrument.gin` is run forward + backward on its own, at the
train step's shapes (batch 16 of 4 s at 16 kHz: 64000 samples, 1000 frames), as a
`tf.function` with gradients from `tf.GradientTape` (the TensorFlow training default):

    decoder         RnnFcDecoder (FcStacks + GRU 512 + output stack), grads w.r.t. its weights
    decoder-bfloat16   the same with RnnFcDecoder(precision='bfloat16') (matmuls in bfloat16)
    decoder-keras-gru  the same with Keras' own keras.layers.GRU (the baseline for nn.FastGRU)
    harmonic        Harmonic (60 harmonics) from raw controls, grads w.r.t. amps and distribution
    noise           FilteredNoise (65 bands, window 257), grads w.r.t. the raw magnitudes
    reverb          Reverb (trainable, 48000-sample impulse response), grads w.r.t. audio and IR
    spectral_loss   SpectralLoss L1 mag + logmag (6 FFT sizes), grads w.r.t. the prediction
    train_step      the whole step as `ddsp_run` compiles it (bench_train.py's worker)

Each part runs in its own process (so "peak RSS MB" is its own; "RSS before MB" is the
process after imports and inputs, before the part's first call). Median of `--repeats`
timed runs after one untimed (trace + first run). "other load" as in bench_dsp.py (benchmarks/common.py).

    python -m benchmarks.profile_train_step --markdown
    python -m benchmarks.profile_train_step --smoke     # harmonic and spectral_loss, batch 2 of 0.2 s: seconds
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import common

ROOT = common.ROOT
PARTS = ("decoder", "decoder-bfloat16", "decoder-keras-gru", "harmonic", "noise", "reverb", "spectral_loss", "train_step")
SAMPLE_RATE, FRAME_RATE = 16000, 250


def _build(part, batch, seconds):
    """Returns (description, run) where run() computes the part's forward + backward once."""
    import numpy as np
    import tensorflow as tf

    import ddsp_core
    from ddsp_core.training import decoders

    n_frames, n_samples = int(seconds * FRAME_RATE), int(seconds * SAMPLE_RATE)
    rng = np.random.default_rng(0)

    def constant(*shape, low=-1.0, high=1.0):
        return tf.constant(rng.uniform(low, high, size=shape).astype("float32"))

    if part == "train_step":
        from benchmarks import bench_train

        args = argparse.Namespace(batch=batch, seconds=seconds, repeats=0, quick=False, preset="",
                                  idle_threshold=-1, max_wait=0)
        model, trainer_batch = bench_train.build_compiled("tensorflow", False, args)
        return "whole train step (train_on_batch)", lambda: model.train_on_batch(trainer_batch, return_dict=True)

    if part.startswith("decoder"):
        decoder = decoders.RnnFcDecoder(rnn_channels=512, ch=512, layers_per_stack=3,
                                         output_splits=(("amps", 1), ("harmonic_distribution", 60),
                                                        ("noise_magnitudes", 65)),
                                         precision="bfloat16" if part == "decoder-bfloat16" else "float32")
        if part == "decoder-keras-gru":
            import keras

            decoder.rnn = keras.layers.GRU(512, return_sequences=True, name="gru")
        inputs = {"ld_scaled": constant(batch, n_frames, 1, low=0, high=1),
                  "f0_scaled": constant(batch, n_frames, 1, low=0.3, high=0.7)}
        decoder(inputs)

        @tf.function
        def grads(conditioning):  # Inputs as arguments: constants would be folded into the graph.
            with tf.GradientTape() as tape:
                outputs = decoder(conditioning)
                value = sum(tf.reduce_mean(v * v) for v in outputs.values())
            return tape.gradient(value, decoder.trainable_variables)
        step = lambda: grads(inputs)  # noqa: E731
        return (f"RnnFcDecoder [{batch},{n_frames}] -> 126 controls ({type(decoder.rnn).__name__}, "
                f"{decoder.precision})", step)

    if part == "harmonic":
        synth = ddsp_core.synths.Harmonic(n_samples=n_samples, sample_rate=SAMPLE_RATE)
        amps, dist = constant(batch, n_frames, 1), constant(batch, n_frames, 60)
        f0 = constant(batch, n_frames, 1, low=100, high=1000)
        watched, arguments, call = [amps, dist], [amps, dist, f0], synth
        what = f"Harmonic [{batch},{n_frames},60] -> [{batch},{n_samples}]"
    elif part == "noise":
        synth = ddsp_core.synths.FilteredNoise(n_samples=n_samples, window_size=257)
        mags = constant(batch, n_frames, 65)
        watched, arguments, call = [mags], [mags], synth
        what = f"FilteredNoise [{batch},{n_frames},65] -> [{batch},{n_samples}]"
    elif part == "reverb":
        reverb = ddsp_core.effects.Reverb(trainable=False)
        audio, ir = constant(batch, n_samples, low=-0.5, high=0.5), constant(1, 48000, low=-1e-3, high=1e-3)
        watched, arguments, call = [audio, ir], [audio, ir], reverb
        what = f"Reverb [{batch},{n_samples}] * IR 48000"
    elif part == "spectral_loss":
        loss = ddsp_core.losses.SpectralLoss(loss_type="L1", mag_weight=1.0, logmag_weight=1.0)
        target, audio = constant(batch, n_samples, low=-0.5, high=0.5), constant(batch, n_samples, low=-0.5, high=0.5)
        watched, arguments, call = [audio], [audio, target], lambda a, t: loss(t, a)
        what = f"SpectralLoss L1 mag+logmag [{batch},{n_samples}]"
    else:
        raise ValueError(part)

    @tf.function
    def grads(*tensors):  # Inputs as arguments: constants would be folded into the graph.
        with tf.GradientTape() as tape:
            for tensor in tensors[:len(watched)]:
                tape.watch(tensor)
            out = call(*tensors)
            value = tf.reduce_mean(out * out) if len(out.shape) else out
        return tape.gradient(value, list(tensors[:len(watched)]))
    return what, lambda: grads(*arguments)


def worker(part, args):
    import numpy as np
    import tensorflow as tf

    what, run = _build(part, args.batch, args.seconds)
    rss_before = common.peak_rss_mb()

    def materialise():
        return [np.asarray(t) for t in tf.nest.flatten(run())]

    timing = common.time_case(lambda: materialise, args.repeats, args.idle_threshold, args.max_wait, 1)
    times = timing["times_s"]
    return {"part": part, "what": what, "median_s": statistics.median(times), "min_s": min(times),
            "max_s": max(times), "runs": len(times), "first_s": timing["first_s"],
            "other_load": timing["other_load"], "rss_before_mb": rss_before, "peak_rss_mb": common.peak_rss_mb()}


def format_table(rows, markdown=False):
    headers = ["part", "what", "median s", "min s", "max s", "runs", "first call s", "RSS before MB",
               "peak RSS MB", "other load"]
    lines = [[r["part"], r.get("what", r.get("error", "")), *(
        [f"{r['median_s']:.3f}", f"{r['min_s']:.3f}", f"{r['max_s']:.3f}", str(r["runs"]), f"{r['first_s']:.1f}",
         f"{r['rss_before_mb']:.0f}", f"{r['peak_rss_mb']:.0f}", common.format_number(r["other_load"], 2)]
        if "median_s" in r else [""] * 8)] for r in rows]
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return "\n".join(out + ["| " + " | ".join(line) + " |" for line in lines])
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *lines)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths)) for line in [headers, *lines])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true",
                        help="the harmonic and spectral_loss parts (unless --parts), batch 2 of 0.2 s, 1 repeat, "
                             "no idle waits (run by tests/benchmarks)")
    common.add_common_flags(parser, max_wait=30)
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch, args.seconds, args.repeats, args.max_wait = 2, 0.2, 1, 0.0
        if args.parts == ",".join(PARTS):
            args.parts = "harmonic,spectral_loss"
    if args._worker:
        with open(args._out, "w") as handle:
            json.dump(worker(args._worker, args), handle)
        return 0
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for part in args.parts.split(","):
            out = os.path.join(workdir, f"{part}.json")
            env = dict(os.environ, KERAS_BACKEND="tensorflow",
                       TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
            command = [*common.module_command("benchmarks.profile_train_step"), "--_worker", part, "--_out", out,
                       "--batch", str(args.batch), "--seconds", str(args.seconds), "--repeats", str(args.repeats),
                       "--idle-threshold", str(args.idle_threshold), "--max-wait", str(args.max_wait)]
            done = subprocess.run(command, env=env, cwd=ROOT)
            if done.returncode or not os.path.exists(out):
                rows.append({"part": part, "error": f"worker exited with status {done.returncode}"})
                continue
            with open(out) as handle:
                rows.append(json.load(handle))
            print(f"[profile] {part}: {rows[-1]['median_s']:.3f} s", file=sys.stderr, flush=True)
    print(f"# Train-step profile (TensorFlow, tf.function), {started}")
    print(f"# machine: {common.machine_description()}")
    print(f"# code: {common.code_description()}")
    print(format_table(rows, markdown=args.markdown))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"started": started, "machine": common.machine_description(), "rows": rows}, handle, indent=1)
    return 0 if all("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
