"""components/sample: the samples folder, the self-contained page and the samples' metadata."""

import glob
import os

import pytest

from ddsp_core.steps import steps
from tests.components.conftest import NUM_STEPS, SAMPLED_EXAMPLES, as_input, call, output

# The listening examples the page adds (ddsp_core/playing/listening.py): a WAV and a PNG each.
LISTENING = ("90_melody", "91_transfer")


def test_samples_metadata_counts_the_examples_files(sampled):
    """The gin param (sample.batch_size) overrides the preset's 6 examples."""
    _, samples = sampled
    step_dir = os.path.join(samples.path, "samples", f"step_{NUM_STEPS:08d}")
    # An original and a generated WAV, and spectrogram, waveform and f0 PNGs, an example.
    assert samples.metadata == {"wav_files": 2 * SAMPLED_EXAMPLES, "png_files": 3 * SAMPLED_EXAMPLES,
                                "listening_examples": len(LISTENING), "page": os.path.join(step_dir, "index.html")}
    wavs = sorted(os.path.basename(path) for path in glob.glob(os.path.join(step_dir, "*.wav")))
    examples = [f"{index:02d}_{kind}.wav" for index in range(SAMPLED_EXAMPLES) for kind in ("generated", "original")]
    assert wavs == examples + [f"{name}.wav" for name in LISTENING]
    assert len(glob.glob(os.path.join(step_dir, "*.png"))) == 3 * SAMPLED_EXAMPLES + len(LISTENING)
    assert os.path.exists(os.path.join(samples.path, "samples", "index.html"))
    assert glob.glob(os.path.join(samples.path, "summaries", "sample", "events.out.tfevents.*"))


def test_page_is_one_file_with_every_sound_and_image_inlined(sampled):
    page, samples = sampled
    with open(page.path, encoding="utf-8") as file:
        html = file.read()
    n_wav, n_png = samples.metadata["wav_files"] + len(LISTENING), samples.metadata["png_files"] + len(LISTENING)
    assert html.count('src="data:audio/wav;base64,') == n_wav
    assert html.count('src="data:image/png;base64,') == n_png
    assert "Measured on training examples" not in html  # The held-out note was sampled.
    assert page.metadata == {}


def test_a_model_without_a_checkpoint_fails_the_step(prepared, tmp_path):
    from kfp.dsl import HTML, Artifact, Model

    from components.sample.component import sample

    page, samples = output(HTML, tmp_path, "page"), output(Artifact, tmp_path, "samples")
    (tmp_path / "model").mkdir()
    with pytest.raises(steps.StepError, match=r"^step 'sample' failed: No checkpoint \(ckpt-N\.weights\.h5\) in "):
        call(sample, dataset=as_input(prepared), model=Model(name="model", uri=str(tmp_path / "model")),
             page=page, samples=samples)
    assert samples.metadata == {}
    assert not os.path.exists(page.path)
