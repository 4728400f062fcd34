"""The example format (ddsp_core/example_format.py): sizes, manifests, and every reader taking it from there."""

import json
import os
import re

import gin
import pytest

from ddsp_core import example_format as lib
from ddsp_core.example_format import ExampleFormat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("sample_rate, frame_rate, hop_size", [
    (16000, 250, 64), (22050, 50, 441), (44100, 100, 441), (48000, 250, 192)])
def test_sizes_at_each_rate(sample_rate, frame_rate, hop_size):
    example_format = ExampleFormat(sample_rate, frame_rate, example_secs=4.0, hop_secs=1.0)
    assert (example_format.n_samples, example_format.n_frames, example_format.hop_size) == (
        4 * sample_rate, 4 * frame_rate, hop_size)
    assert (example_format.n_samples_16k, example_format.frame_hop_16k) == (64000, 16000 // frame_rate)
    lengths = example_format.feature_lengths()
    assert lengths["audio"] == 4 * sample_rate and lengths["f0_hz"] == lengths["power_db"] == 4 * frame_rate
    assert ("audio_16k" in lengths) == (sample_rate != 16000)


def test_magentas_defaults():
    assert ExampleFormat().to_dict() == {"sample_rate": 16000, "frame_rate": 250, "example_secs": 4.0,
                                         "hop_secs": 1.0, "centered": False}
    assert ExampleFormat(centered=True).n_frames == 1001


def test_frame_rates_that_fit_a_rate():
    assert lib.frame_rates_for(48000)[:3] == [250, 200, 160]
    assert lib.frame_rates_for(44100)[:3] == [100, 50, 25]
    assert lib.frame_rates_for(22050)[:2] == [50, 25]


@pytest.mark.parametrize("fields, message", [
    (dict(sample_rate=44100), r"frame_rate 250 must divide both the sample rate 44100 Hz .* use one of \[100, 50"),
    (dict(frame_rate=300), "must divide both"),
    (dict(sample_rate=16000.5), "sample_rate must be a positive whole number"),
    (dict(example_secs=0), "example_secs must be positive"),
    (dict(hop_secs=0.001), r"hop_secs x frame_rate = .* whole number of frames"),
])
def test_bad_formats_say_what_to_change(fields, message):
    with pytest.raises(lib.ExampleFormatError, match=message):
        ExampleFormat(**fields)


def test_from_manifest_reads_new_and_older_manifests():
    example_format = ExampleFormat(48000, 250, 1.0, 0.5, True)
    assert ExampleFormat.from_manifest({"example_format": example_format.to_dict()}) == example_format
    older = {"settings": {"sample_rate": 48000, "frame_rate": 250, "example_secs": 1.0, "hop_secs": 0.5,
                          "center": True, "crepe_capacity": "tiny"}}
    assert ExampleFormat.from_manifest(older) == example_format
    with pytest.raises(lib.ExampleFormatError, match=r"lacks example_secs, frame_rate, sample_rate"):
        ExampleFormat.from_manifest({"settings": {}}, "x.json")


@pytest.mark.parametrize("pattern, first", [
    ("/d/train.tfrecord*", "/d/train_manifest.json"),
    ("/d/train.tfrecord-00000-of-00002", "/d/train_manifest.json"),
    ("/tmp/pytest-of-root/d/eval.tfrecord*", "/tmp/pytest-of-root/d/eval_manifest.json"),
    ("gs://b/notes-eval.tfrecord*", "gs://b/notes-eval_manifest.json"),
])
def test_manifest_candidates(pattern, first):
    candidates = lib.manifest_candidates(pattern)
    assert candidates[0] == first
    if "eval" in pattern:
        assert any(path.endswith(("/train_manifest.json", "/notes_manifest.json")) for path in candidates[1:])


def _write_manifest(folder, example_format):
    path = folder / "train_manifest.json"
    path.write_text(json.dumps({"example_format": example_format.to_dict()}))
    return str(path)


def test_the_data_provider_takes_the_format_from_the_manifest(tmp_path):
    from ddsp_core.training import data

    example_format = ExampleFormat(48000, 250, 1.0, 0.5)
    path = _write_manifest(tmp_path, example_format)
    for split in ("train", "eval"):  # The eval shards' format is the train manifest's.
        provider = data.TFRecordProvider(str(tmp_path / f"{split}.tfrecord*"))
        assert (provider.example_format, provider.manifest_path) == (example_format, path)
        assert (provider.sample_rate, provider.n_samples, provider.n_frames) == (48000, 48000, 250)
        assert provider.required_lengths["audio_16k"] == 16000
    assert data.TFRecordProvider(str(tmp_path / "train.tfrecord*"), sample_rate=48000).sample_rate == 48000
    with pytest.raises(ValueError, match=r"sample_rate = 16000 \(the manifest: 48000\) disagree with the dataset's "
                                         r"manifest .*train_manifest.json"):
        data.TFRecordProvider(str(tmp_path / "train.tfrecord*"), sample_rate=16000)


def test_without_a_manifest_the_provider_uses_magentas_defaults(tmp_path):
    from ddsp_core.training import data

    provider = data.TFRecordProvider(str(tmp_path / "train.tfrecord*"), example_secs=1)
    assert provider.example_format == ExampleFormat(example_secs=1.0) and provider.manifest_path is None


def test_the_model_is_bound_to_the_datas_format():
    from ddsp_core.training import gin_configs
    from ddsp_core.models import get_model

    try:
        gin_configs.parse_gin(["models/solo_instrument.gin"], [])
        changed = gin_configs.bind_example_format(ExampleFormat(48000, 250, 1.0, 0.5))
        assert changed == {"sample_rate": (16000, 48000), "n_samples": (64000, 48000)}
        model = get_model()
        harmonic = model.processor_group.dag[0][0]
        assert (harmonic.sample_rate, harmonic.n_samples) == (48000, 48000)
        assert model.loss_objs[0].sample_rate == 48000
        assert gin_configs.bind_example_format(ExampleFormat(48000, 250, 1.0, 0.5)) == {}  # Already so.
        assert gin_configs.bind_example_format(None) == {}
    finally:
        gin.clear_config()


# ddsp_core files (relative) that may name the rates and lengths as numbers: the format's own
# definition, CREPE's rate and DDSP-VST's fixed format.
DEFINITIONS = {"example_format.py", "crepe.py", "export/vst.py"}
LITERAL = re.compile(r"(?<![\w.])(16000|16_000|250|64000)(?![\w.])")


def _code_lines(path):
    """(line number, text) of a Python file's code outside docstrings and comments, and
    without function defaults (`name=16000` in a def's signature: magenta's defaults)."""
    import ast
    import io
    import tokenize

    source = open(path).read()
    skip = set()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            skip.update(range(body[0].lineno, body[0].end_lineno + 1))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if default is not None:
                    skip.update(range(default.lineno, default.end_lineno + 1))
    code = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING) or token.start[0] in skip:
            continue
        code.setdefault(token.start[0], []).append(token.string)
    return [(number, " ".join(tokens)) for number, tokens in sorted(code.items())]


def test_no_rate_or_length_is_written_twice_in_ddsp_core():
    """No literal 16000, 250 or 64000 in ddsp_core's code outside the format's definition and CREPE:
    docstrings, comments, strings and function defaults (magenta's, kept for compatibility) aside.
    Gin files keep magenta's defaults for models built without a dataset (models/ae.gin)."""
    found = []
    package = os.path.join(ROOT, "ddsp_core")
    for folder, _, names in os.walk(package):
        for name in names:
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, package)
            if not name.endswith(".py") or relative in DEFINITIONS:
                continue
            found += [f"{relative}:{number}: {text}" for number, text in _code_lines(path) if LITERAL.search(text)]
    assert not found, "\n".join(found)
