"""Tests for ddsp_core.training.data: TFRecords written here with tf.train.Example, read back."""

import numpy as np
import pytest
import tensorflow as tf

from ddsp_core.training import data
from tests.gin_helpers import build_from_gin

# Short examples keep the files small: 0.1 s -> 1600 samples at 16 kHz, 25 frames at 250 Hz.
SHORT_SECS = 0.1
SHORT_SAMPLES = 1600
SHORT_FRAMES = 25


def _float_feature(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(values, np.float32).ravel()))


def _write_records(path, examples):
    """Writes each {name: values} as a serialized tf.train.Example; returns the path as str."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for features in examples:
            feature = {name: _float_feature(values) for name, values in features.items()}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return str(path)


def _example(index, n_samples=SHORT_SAMPLES, n_frames=SHORT_FRAMES, n_samples_16k=None, power=False):
    """Known ramps, distinct per example; `index` is f0_hz[0] - 100. Without power_db (as datasets
    prepared before it was added) unless `power`."""
    example = {
        "audio": (np.linspace(-0.5, 0.5, n_samples) + index).astype(np.float32),
        "f0_hz": (100.0 + index + np.arange(n_frames)).astype(np.float32),
        "f0_confidence": np.linspace(0.0, 1.0, n_frames).astype(np.float32),
        "loudness_db": (-0.1 * np.arange(n_frames) - index).astype(np.float32),
    }
    if power:
        example["power_db"] = (-0.2 * np.arange(n_frames) - index).astype(np.float32)
    if n_samples_16k is not None:
        example["audio_16k"] = (np.linspace(1.0, -1.0, n_samples_16k) * index).astype(np.float32)
    return example


def _write_shards(directory, n_shards, per_shard, **lengths):
    """Shards train.tfrecord-0000i-of-0000n, examples numbered consecutively across them."""
    paths = []
    for shard in range(n_shards):
        indices = range(shard * per_shard, (shard + 1) * per_shard)
        name = f"train.tfrecord-{shard:05d}-of-{n_shards:05d}"
        paths.append(_write_records(directory / name, [_example(i, **lengths) for i in indices]))
    return paths


def _short(file_pattern, **kwargs):
    return data.TFRecordProvider(file_pattern, example_secs=SHORT_SECS, **kwargs)


def _indices(dataset):
    """Example indices, in order, of a dataset of single examples or of batches."""
    return [int(i) for f0 in dataset.as_numpy_iterator() for i in np.ravel(f0["f0_hz"][..., 0] - 100.0)]


def test_batch_shapes_and_dtypes_at_default_settings(tmp_path):
    path = _write_records(tmp_path / "train.tfrecord", [_example(i, 64000, 1000) for i in range(5)])
    provider = data.TFRecordProvider(path)
    assert (provider.n_samples, provider.n_frames) == (64000, 1000)
    dataset = provider.get_batch(4, shuffle=False, repeats=1)
    assert dataset.element_spec["audio"].shape == (4, 64000)  # Static: drop_remainder.
    batches = list(dataset.as_numpy_iterator())
    assert len(batches) == 1
    batch = batches[0]
    assert sorted(batch) == ["audio", "f0_confidence", "f0_hz", "loudness_db"]
    assert batch["audio"].shape == (4, 64000)
    for name in ("f0_hz", "f0_confidence", "loudness_db"):
        assert batch[name].shape == (4, 1000)
    assert all(value.dtype == np.float32 for value in batch.values())


def test_values_round_trip_exactly(tmp_path):
    examples = [_example(i) for i in range(3)]
    path = _write_records(tmp_path / "train.tfrecord", examples)
    read = list(_short(path).get_dataset(shuffle=False).as_numpy_iterator())
    assert len(read) == 3
    for written, got in zip(examples, read):
        assert sorted(got) == sorted(written)
        for name in written:
            np.testing.assert_array_equal(got[name], written[name], err_msg=name)


def test_shuffle_false_keeps_shard_and_record_order(tmp_path):
    _write_shards(tmp_path, n_shards=3, per_shard=4)
    provider = _short(str(tmp_path / "train.tfrecord-*"))
    assert _indices(provider.get_dataset(shuffle=False)) == list(range(12))
    assert _indices(provider.get_batch(2, shuffle=False, repeats=1)) == list(range(12))


def test_shuffle_reads_every_shard_and_is_reproducible_with_a_seed(tmp_path):
    _write_shards(tmp_path, n_shards=3, per_shard=4)
    pattern = str(tmp_path / "train.tfrecord-*")
    orders = [_indices(_short(pattern, seed=7).get_batch(3, shuffle=True, repeats=1)) for _ in range(2)]
    assert sorted(orders[0]) == list(range(12))
    assert orders[0] == orders[1]
    assert orders[0] != list(range(12))


@pytest.mark.parametrize("form", ["comma_separated", "comma_separated_with_spaces", "list", "overlapping"])
def test_several_patterns(tmp_path, form):
    first, second, third = _write_shards(tmp_path, n_shards=3, per_shard=2)
    file_pattern = {
        "comma_separated": f"{first},{tmp_path}/train.tfrecord-0000[12]-*",
        "comma_separated_with_spaces": f" {first} , {second},{third} ",
        "list": [first, f"{second},{third}"],
        "overlapping": [str(tmp_path / "train.tfrecord-*"), second],  # A file matched twice is read once.
    }[form]
    provider = _short(file_pattern)
    assert provider.list_files() == [first, second, third]
    assert _indices(provider.get_dataset(shuffle=False)) == list(range(6))


@pytest.mark.parametrize("drop_remainder, repeats, expected_sizes", [
    ("drop", 1, [3, 3, 3]),
    ("keep", 1, [3, 3, 3, 1]),
    ("drop", 2, [3] * 6),
])
def test_repeats_and_remainder(tmp_path, drop_remainder, repeats, expected_sizes):
    _write_shards(tmp_path, n_shards=2, per_shard=5)
    provider = _short(str(tmp_path / "*"), seed=0)
    dataset = provider.get_batch(3, shuffle=True, repeats=repeats, drop_remainder=drop_remainder == "drop")
    assert [len(batch["audio"]) for batch in dataset.as_numpy_iterator()] == expected_sizes


def test_repeats_forever_by_default(tmp_path):
    path = _write_records(tmp_path / "train.tfrecord", [_example(i) for i in range(2)])
    batches = list(_short(path).get_batch(2, shuffle=False).take(5).as_numpy_iterator())
    assert len(batches) == 5


def test_centered_expects_one_more_frame(tmp_path):
    assert data.TFRecordProvider("unused", centered=True).n_frames == 1001
    path = _write_records(tmp_path / "train.tfrecord", [_example(i, n_frames=SHORT_FRAMES + 1) for i in range(2)])
    provider = _short(path, centered=True)
    batch = next(provider.get_batch(2, shuffle=False).as_numpy_iterator())
    assert batch["loudness_db"].shape == (2, SHORT_FRAMES + 1)
    with pytest.raises(ValueError, match=r"'f0_hz' has 26 values, expected 25.*centered"):
        _short(path, centered=False).get_dataset()


def test_other_sample_rates_need_audio_16k(tmp_path):
    provider = data.TFRecordProvider("unused", sample_rate=48000)
    assert provider.features_dict["audio"].shape == [192000]
    assert provider.features_dict["audio_16k"].shape == [64000]
    assert "audio_16k" not in data.TFRecordProvider("unused").features_dict

    examples = [_example(i, n_samples=4800, n_samples_16k=SHORT_SAMPLES) for i in range(2)]
    path = _write_records(tmp_path / "with_16k.tfrecord", examples)
    read = list(_short(path, sample_rate=48000).get_dataset(shuffle=False).as_numpy_iterator())
    np.testing.assert_array_equal(read[1]["audio_16k"], examples[1]["audio_16k"])
    assert read[1]["audio"].shape == (4800,)

    path = _write_records(tmp_path / "without_16k.tfrecord", [_example(0, n_samples=4800)])
    with pytest.raises(ValueError, match="'audio_16k' is missing"):
        _short(path, sample_rate=48000).get_dataset()


def test_a_pattern_matching_nothing_is_named(tmp_path):
    path = _write_records(tmp_path / "train.tfrecord", [_example(0)])
    missing = str(tmp_path / "nothing-*.tfrecord")
    provider = _short(f"{path},{missing}")  # Construction reads no file.
    with pytest.raises(ValueError, match="No TFRecord file matches") as error:
        provider.get_dataset()
    assert repr(missing) in str(error.value)
    assert "ddsp_prepare_tfrecord" in str(error.value)


def _write_sparse_shards(directory, counts):
    """Shards train.tfrecord-0000i-of-0000n holding counts[i] examples each (0: an empty shard,
    as Beam writes when a split has fewer examples than shards); examples numbered across them."""
    paths, start = [], 0
    for shard, count in enumerate(counts):
        name = f"train.tfrecord-{shard:05d}-of-{len(counts):05d}"
        paths.append(_write_records(directory / name, [_example(i) for i in range(start, start + count)]))
        start += count
    return paths


@pytest.mark.parametrize("counts", [[0, 2, 0, 1], [0, 0, 0, 1], [3, 0, 0, 0]], ids=["mixed", "last_only", "first_only"])
def test_empty_shards_are_read_as_no_records(tmp_path, counts):
    """The first record is checked in the first non-empty shard; every record of the others is read."""
    _write_sparse_shards(tmp_path, counts)
    pattern = str(tmp_path / "train.tfrecord-*")
    assert _indices(_short(pattern).get_dataset(shuffle=False)) == list(range(sum(counts)))
    assert sorted(_indices(_short(pattern, seed=3).get_batch(1, shuffle=True, repeats=1))) == list(range(sum(counts)))
    # Eval and sample read like this: file order, the last batch kept.
    sizes = [len(batch["audio"]) for batch in _short(pattern).get_batch(8, shuffle=False, repeats=1,
                                                                        drop_remainder=False).as_numpy_iterator()]
    assert sizes == [sum(counts)]


def test_a_wrong_record_after_empty_shards_is_still_caught(tmp_path):
    _write_records(tmp_path / "train.tfrecord-00000-of-00002", [])
    _write_records(tmp_path / "train.tfrecord-00001-of-00002", [_example(0, 64000, 1000)])
    with pytest.raises(ValueError, match="'audio' has 64000 values, expected 1600") as error:
        _short(str(tmp_path / "train.tfrecord-*")).get_dataset()
    assert "train.tfrecord-00001-of-00002" in str(error.value)


def test_only_empty_files_is_an_error_naming_the_pattern_and_count(tmp_path):
    _write_sparse_shards(tmp_path, [0, 0, 0])
    pattern = str(tmp_path / "train.tfrecord-*")
    with pytest.raises(ValueError, match="is empty") as error:
        _short(pattern).get_dataset()
    message = str(error.value)
    for expected in (f"Every TFRecord file matched by {pattern!r} is empty", "(3 empty files, e.g. ",
                     "train.tfrecord-00000-of-00003", "ddsp_prepare_tfrecord", "skipped"):
        assert expected in message, expected


def test_wrong_length_first_record_names_lengths_and_settings(tmp_path):
    # Written at 4 s, read at 0.1 s.
    path = _write_records(tmp_path / "train.tfrecord", [_example(0, 64000, 1000)])
    with pytest.raises(ValueError) as error:
        _short(path).get_dataset()
    message = str(error.value)
    for expected in ("audio [1600]", "f0_hz [25]", "example_secs=0.1", "sample_rate=16000", "frame_rate=250",
                     "'audio' has 64000 values, expected 1600", "'loudness_db' has 1000 values, expected 25"):
        assert expected in message


def test_wrong_feature_type_is_named(tmp_path):
    example = tf.train.Example(features=tf.train.Features(feature={
        **{name: _float_feature(values) for name, values in _example(0).items()},
        "loudness_db": tf.train.Feature(int64_list=tf.train.Int64List(value=[0] * SHORT_FRAMES)),
    }))
    path = str(tmp_path / "train.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(example.SerializeToString())
    with pytest.raises(ValueError, match="'loudness_db' is int64_list, not float_list"):
        _short(path).get_dataset()


def test_wrong_length_later_record_names_lengths_and_settings(tmp_path):
    path = _write_records(tmp_path / "train.tfrecord", [_example(0), _example(1, n_frames=SHORT_FRAMES - 1)])
    dataset = _short(path).get_dataset(shuffle=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"feature f0_hz must have 25 values \(example_secs=0.1"):
        list(dataset.as_numpy_iterator())


def test_features_dict_parses_a_record(tmp_path):
    example = _example(3)
    path = _write_records(tmp_path / "train.tfrecord", [example])
    provider = _short(path)
    record = next(iter(tf.data.TFRecordDataset(path)))
    parsed = tf.io.parse_single_example(record, provider.features_dict)
    np.testing.assert_array_equal(parsed["f0_hz"].numpy(), example["f0_hz"])


def test_power_db_is_read_when_the_records_have_it(tmp_path):
    examples = [_example(i, power=True) for i in range(3)]
    provider = _short(_write_records(tmp_path / "train.tfrecord", examples))
    assert "power_db" not in provider.lengths  # Not known before the first record is read.
    batch = next(provider.get_batch(3, shuffle=False).as_numpy_iterator())
    assert sorted(batch) == ["audio", "f0_confidence", "f0_hz", "loudness_db", "power_db"]
    np.testing.assert_array_equal(batch["power_db"], np.stack([example["power_db"] for example in examples]))
    assert provider.lengths["power_db"] == SHORT_FRAMES
    assert provider.features_dict["power_db"].shape == [SHORT_FRAMES]


def test_datasets_prepared_before_power_db_are_read_without_it(tmp_path):
    provider = _short(_write_records(tmp_path / "train.tfrecord", [_example(i) for i in range(2)]))
    batch = next(provider.get_batch(2, shuffle=False).as_numpy_iterator())
    assert "power_db" not in batch and "power_db" not in provider.lengths
    assert sorted(provider.required_lengths) == ["audio", "f0_confidence", "f0_hz", "loudness_db"]


def test_power_db_of_the_wrong_length_is_named(tmp_path):
    example = {**_example(0), "power_db": np.zeros(SHORT_FRAMES + 1, np.float32)}
    path = _write_records(tmp_path / "train.tfrecord", [example])
    with pytest.raises(ValueError, match=f"'power_db' has {SHORT_FRAMES + 1} values, expected {SHORT_FRAMES}"):
        _short(path).get_dataset()


def test_a_later_record_without_power_db_says_to_prepare_again(tmp_path):
    path = _write_records(tmp_path / "train.tfrecord", [_example(0, power=True), _example(1)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="power_db must have 25 values.*re-run the prepare job"):
        list(_short(path).get_dataset(shuffle=False).as_numpy_iterator())


@pytest.mark.parametrize("kwargs, message", [
    ({"file_pattern": None}, "needs file_pattern"),
    ({"file_pattern": 3}, "file_pattern must be a string or a list of strings"),
    ({"file_pattern": " , "}, "file_pattern names no file"),
    ({"file_pattern": []}, "file_pattern names no file"),
    ({"example_secs": 0}, "example_secs must be positive"),
    ({"example_secs": -4}, "example_secs must be positive"),
    ({"sample_rate": 0}, "sample_rate must be a positive whole number"),
    ({"sample_rate": 16000.5}, "sample_rate must be a positive whole number"),
    ({"frame_rate": 0}, "frame_rate must be a positive whole number"),
    ({"example_secs": 0.001}, r"example_secs x frame_rate = .* must be a whole number of frames"),
    ({"example_secs": 0.01, "sample_rate": 22050, "frame_rate": 100},
     r"frame_rate 100 must divide both the sample rate 22050 Hz .* use one of \[50, 25"),
    ({"shuffle_buffer_size": 0}, "shuffle_buffer_size must be a positive integer"),
    ({"seed": "7"}, "seed must be an integer or None"),
    ({"cycle_length": 0}, "cycle_length must be a positive integer"),
])
def test_invalid_constructor_arguments(kwargs, message):
    kwargs = {"file_pattern": "train.tfrecord*", **kwargs}
    with pytest.raises(ValueError, match=message):
        data.TFRecordProvider(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"batch_size": 2, "repeats": 0}, "repeats must be a positive integer, or -1"),
    ({"batch_size": 2, "repeats": -2}, "repeats must be a positive integer, or -1"),
])
def test_invalid_batch_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.TFRecordProvider("unused").get_batch(**kwargs)


def test_data_provider_get_dataset_is_abstract():
    with pytest.raises(NotImplementedError, match="DataProvider must implement get_dataset"):
        data.DataProvider(16000, 250).get_batch(2)


def test_provider_from_gin(tmp_path):
    _write_shards(tmp_path, n_shards=2, per_shard=2)
    config = f"""
    TFRecordProvider.file_pattern = '{tmp_path}/train.tfrecord-*'
    TFRecordProvider.example_secs = {SHORT_SECS}
    TFRecordProvider.seed = 1
    """
    provider = build_from_gin("TFRecordProvider", config)
    assert (provider.n_samples, provider.n_frames, provider.seed) == (SHORT_SAMPLES, SHORT_FRAMES, 1)
    assert sorted(_indices(provider.get_batch(2, repeats=1))) == [0, 1, 2, 3]
