"""The listening examples on the known instrument (tests/playing/conftest.py): files, plots, page section."""

import io

import matplotlib.image
import soundfile

from ddsp_core.playing import listening
from tests.playing.conftest import SAMPLE_RATE


def test_listening_examples_write_a_wav_and_the_performance_plot_each(known_instrument_dir, tmp_path):
    import matplotlib.pyplot

    examples = listening.write_listening_examples(str(known_instrument_dir), str(tmp_path))
    assert [name for name, _, _ in examples] == ["90_melody", "91_transfer"]
    for name, _, facts in examples:
        audio, rate = soundfile.read(tmp_path / f"{name}.wav")
        assert rate == SAMPLE_RATE and abs(audio.size / rate - facts["seconds"]) < 0.01
    # plotting.performance_figure, 900 px wide: output, f0 and level rows; the transfer adds its input's.
    heights = {name: matplotlib.image.imread(io.BytesIO((tmp_path / f"{name}.png").read_bytes()), format="png").shape[:2]
               for name, _, _ in examples}
    assert heights == {"90_melody": (621, 900), "91_transfer": (828, 900)}
    assert matplotlib.pyplot.get_fignums() == []


def test_section_is_added_before_the_page_end(tmp_path):
    (tmp_path / "index.html").write_text("<html><body><h1>Step 5</h1></body></html>")
    listening.add_to_page(str(tmp_path), [("90_melody", "A <melody>", {"voices": 1, "gain": 1.0})])
    page = (tmp_path / "index.html").read_text()
    assert page.startswith("<html><body><h1>Step 5</h1><section") and page.endswith("</section>\n</body></html>")
    assert "<h3>A &lt;melody&gt;</h3><p>voices 1, gain 1.0</p>" in page
    assert 'src="90_melody.wav"' in page and 'src="90_melody.png"' in page
