"""Resynthesize validation windows with checkpoints of a magenta ddsp 3.7.0 training run.

Run by benchmarks/time_to_quality.py in magenta's venv (TF_USE_LEGACY_KERAS=1,
PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python):

    python generate.py SAVE_DIR WINDOWS.npz OUT_DIR ckpt-5 ckpt-60 ...

WINDOWS.npz holds 'audio' [n, n_samples], 'f0_hz', 'f0_confidence', 'loudness_db'
[n, n_frames]. For each checkpoint prefix, writes OUT_DIR/<prefix>.npz with 'generated'
[n, n_samples] float32, from the model of SAVE_DIR's operative gin config.
"""

import glob
import os
import sys


def main(argv):
    save_dir, windows_path, out_dir, *prefixes = argv
    import ddsp.training  # noqa: F401  Registers magenta's configurables.
    import gin
    import numpy as np
    from ddsp.training import models

    configs = sorted(glob.glob(os.path.join(save_dir, "operative_config-*.gin")),
                     key=lambda path: int(path.rsplit("-", 1)[1].split(".")[0]))
    with gin.unlock_config():
        gin.parse_config_file(configs[-1], skip_unknown=True)
    windows = dict(np.load(windows_path))
    model = models.get_model()
    os.makedirs(out_dir, exist_ok=True)
    for prefix in prefixes:
        model.restore(os.path.join(save_dir, prefix), verbose=False)
        generated = []
        for start in range(0, len(windows["audio"]), 8):
            batch = {key: values[start:start + 8] for key, values in windows.items()}
            outputs = model(batch, training=False)
            generated.append(np.asarray(model.get_audio_from_outputs(outputs), np.float32))
        np.savez(os.path.join(out_dir, f"{prefix}.npz"), generated=np.concatenate(generated))
        print(f"generated {prefix}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
