"""Does a bfloat16 decoder keep the loss curve? Trains the solo model twice from the same start.

Trains `models/solo_instrument.gin` for `--steps` steps with `RnnFcDecoder.precision`
'float32' and then 'bfloat16' (Keras 'mixed_bfloat16' matmuls), from the same initial
weights, on the same batches: harmonic tones (8 harmonics, random f0 in 150-900 Hz with
vibrato, random loudness envelope) rendered in NumPy, with their true f0 and the
A-weighted loudness of `spectral_ops.compute_loudness` as conditioning. Prints both
loss curves (mean of each block of 10 steps) and the mean step time of each.

    python -m benchmarks.precision_loss_curve --steps 60 --batch 4
    python -m benchmarks.precision_loss_curve --smoke    # 2 steps, batch 1 of 1 s, a tiny decoder: seconds
"""

import argparse
import sys
import time


def tone_batch(rng, batch, seconds=4.0, sample_rate=16000, frame_rate=250):
    import numpy as np

    from ddsp_core import spectral_ops

    n_samples, n_frames = int(seconds * sample_rate), int(seconds * frame_rate)
    t = np.arange(n_samples) / sample_rate
    f0 = rng.uniform(150, 900, size=(batch, 1)) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t)[None])
    envelope = np.clip(np.sin(np.pi * t / seconds)[None] * rng.uniform(0.1, 0.6, size=(batch, 1)), 0, None)
    phase = 2 * np.pi * np.cumsum(f0, axis=1) / sample_rate
    audio = sum(np.sin(k * phase) / k for k in range(1, 9)) * envelope
    audio = audio.astype("float32")
    loudness = np.asarray(spectral_ops.compute_loudness(audio, sample_rate, frame_rate, n_fft=2048))[:, :n_frames]
    return {"audio": audio, "f0_hz": f0[:, ::sample_rate // frame_rate][:, :n_frames].astype("float32"),
            "f0_confidence": np.ones((batch, n_frames), "float32"), "loudness_db": loudness.astype("float32")}


# --smoke: the decoder and reverb of bench_train.py --quick.
SMOKE_PARAMS = ("RnnFcDecoder.rnn_channels = 32", "RnnFcDecoder.ch = 32", "Reverb.reverb_length = 1600")


def train(precision, batches, initial_weights=None, seconds=4.0, extra_params=()):
    import gin
    import numpy as np

    from benchmarks import bench_train
    from ddsp_core.training import ddsp_run, trainers
    from ddsp_core.training.models import get_model

    gin.clear_config()
    ddsp_run.parse_gin(["models/solo_instrument.gin"], [f"RnnFcDecoder.precision = '{precision}'",
                                                        f"n_samples = {int(seconds * 16000)}", *extra_params])
    model = get_model()
    model(bench_train.synthetic_batch(1, seconds))
    if initial_weights is not None:
        model.set_weights(initial_weights)
    with gin.unlock_config():
        trainers.Trainer().compile(model)
    losses, times = [], []
    for batch in batches:
        start = time.perf_counter()
        losses.append(float(np.asarray(model.train_on_batch(batch, return_dict=True)["total_loss"])))
        times.append(time.perf_counter() - start)
    return model, losses, times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--smoke", action="store_true",
                        help="2 steps, batch 1 of 1 s, a 32-unit decoder and a short reverb (run by tests/benchmarks)")
    args = parser.parse_args(argv)
    seconds, extra_params = 4.0, ()
    if args.smoke:
        args.steps, args.batch, seconds, extra_params = 2, 1, 1.0, SMOKE_PARAMS
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    pool = [tone_batch(rng, args.batch, seconds) for _ in range(2 if args.smoke else 8)]
    batches = [pool[i % len(pool)] for i in range(args.steps)]
    keras.utils.set_random_seed(0)
    model, losses32, times32 = train("float32", batches, None, seconds, extra_params)
    keras.utils.set_random_seed(0)  # The same seed gives the same initial weights (see the first losses).
    _, losses16, times16 = train("bfloat16", batches, None, seconds, extra_params)
    print(f"# backend {keras.backend.backend()}, batch {args.batch}, {args.steps} steps")
    print("steps      float32   bfloat16")
    for i in range(0, args.steps, 10):
        print(f"{i:>3}-{min(i + 10, args.steps) - 1:<5} {np.mean(losses32[i:i + 10]):9.3f} {np.mean(losses16[i:i + 10]):9.3f}")
    print(f"mean step s (after the first): float32 {np.mean(times32[1:]):.3f}, bfloat16 {np.mean(times16[1:]):.3f}")
    print(f"first loss: float32 {losses32[0]:.4f}, bfloat16 {losses16[0]:.4f} (same start: close)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
