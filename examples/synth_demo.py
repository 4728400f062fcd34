"""The synth demo: a 4 s, 16 kHz, 440 Hz tone with 20 decaying harmonics.

The same script magenta's ddsp users run, with only the import changed. Writes
synth_demo_py.wav and synth_demo_py.png (the spectrogram) to OUTDIR.

    python examples/synth_demo.py OUTDIR
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")

import ddsp_core as ddsp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import soundfile  # noqa: E402


def main(argv):
    if len(argv) != 1:
        print("usage: python examples/synth_demo.py OUTDIR", file=sys.stderr)
        return 2
    out_dir = argv[0]
    os.makedirs(out_dir, exist_ok=True)

    sample_rate = 16000; n_frames = 1000; hop_size = 64; n_samples = n_frames * hop_size  # noqa: E702
    amps = np.linspace(1.0, -3.0, n_frames)[np.newaxis, :, np.newaxis]  # [batch, n_frames, 1]
    n_harmonics = 20
    harmonic_distribution = (np.ones([n_frames, 1]) * np.linspace(1.0, -1.0, n_harmonics)[np.newaxis, :])[np.newaxis]
    f0_hz = 440.0 * np.ones([1, n_frames, 1])
    additive_synth = ddsp.synths.Additive(n_samples=n_samples, scale_fn=ddsp.core.exp_sigmoid,
                                          sample_rate=sample_rate)
    audio = additive_synth(amps, harmonic_distribution, f0_hz)
    a = audio.numpy()[0]

    wav_path = os.path.join(out_dir, "synth_demo_py.wav")
    png_path = os.path.join(out_dir, "synth_demo_py.png")
    soundfile.write(wav_path, a, sample_rate)
    plt.figure(figsize=(8, 4))
    plt.specgram(a, Fs=sample_rate, NFFT=1024, noverlap=256)
    plt.xlabel("time (s)")
    plt.ylabel("frequency (Hz)")
    plt.title("synth demo: 440 Hz, 20 harmonics (18 below Nyquist)")
    plt.savefig(png_path, dpi=100)
    plt.close()
    print(f"wrote {wav_path} ({len(a)} samples, {sample_rate} Hz) and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
