"""Runs the `prepare_tfrecord` component in the project's image with kfp's DockerRunner.

    DOCKER_HOST=unix:///run/ddsp-podman.sock \
      .venv/bin/python docker/run_component.py --image localhost/ddsp-pipeline:0.1.0 --pipeline-root out/podman

`docker/podman_run_component.sh` sets this up (image, podman's Docker-compatible API
socket) and calls it. What it does:

1. copies the audio (default: the bundled clarinet training material) under the pipeline root, the one
   host folder kfp's DockerRunner mounts into the container (at the same path);
2. runs the component through `kfp.local` with `DockerRunner`: kfp starts a container of
   --image with the component's own command (`python3 -m kfp.dsl.executor_main ...`);
3. checks the output Dataset: TFRecord shards and train_manifest.json, with as many
   examples in the shards as the manifest says. Exit status 0 when all of that holds.

Needs the `docker` package (the Docker SDK for Python) next to kfp on the host.
"""

import argparse
import glob
import json
import os
import shutil
import stat
import sys
import time

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLED_NOTES = os.path.join(REPO_DIR, "data", "clarinet", "train")
# The user the image runs its steps as (Dockerfile: useradd --uid 1000 ddsp).
IMAGE_UID = 1000


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="localhost/ddsp-pipeline:0.1.0",
                        help="The image to run the component in. Default: %(default)s")
    parser.add_argument("--pipeline-root", default=os.path.join(REPO_DIR, "out", "podman"),
                        help="Host folder for kfp's artifacts (mounted into the container). Default: %(default)s")
    parser.add_argument("--audio-dir", default=BUNDLED_NOTES,
                        help="Folder of .flac/.wav files to prepare (copied under the pipeline root). "
                             "Default: the bundled clarinet training set.")
    parser.add_argument("--crepe-capacity", default="tiny", help="CREPE size (default: %(default)s).")
    return parser.parse_args(argv)


def _make_writable_for_image(path):
    """The container runs as uid 1000 and writes under `path`: let it (rootful podman maps
    uids 1:1). Artifacts it writes are owned by uid 1000 on the host."""
    os.makedirs(path, exist_ok=True)
    if os.getuid() == 0:
        os.chown(path, IMAGE_UID, IMAGE_UID)
    else:
        os.chmod(path, os.stat(path).st_mode | stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO)


def _stage_audio(audio_dir, pipeline_root):
    """Copies the audio files to <pipeline_root>/input/; returns the glob for the component."""
    files = sorted(path for path in glob.glob(os.path.join(audio_dir, "*"))
                   if path.lower().endswith((".flac", ".wav", ".ogg", ".aiff", ".mp3")))
    if not files:
        sys.exit(f"run_component.py: no audio file (.flac, .wav, ...) in {audio_dir}: give --audio-dir.")
    input_dir = os.path.join(pipeline_root, "input")
    os.makedirs(input_dir, exist_ok=True)
    for path in files:
        shutil.copy2(path, input_dir)
    print(f"Staged {len(files)} audio files in {input_dir}")
    return os.path.join(input_dir, "*")


def _count_records(pattern):
    """Number of records in the TFRecord files matching `pattern` (TensorFlow on the host)."""
    import tensorflow as tf

    return sum(1 for _ in tf.data.TFRecordDataset(sorted(glob.glob(pattern))))


def check_dataset(dataset_dir):
    """Checks a prepare_tfrecord output folder; returns a list of problems (empty: good)."""
    problems = []
    manifest_path = os.path.join(dataset_dir, "train_manifest.json")
    shards = sorted(glob.glob(os.path.join(dataset_dir, "train.tfrecord-*")))
    print(f"Dataset: {dataset_dir}")
    for name in sorted(os.listdir(dataset_dir)):
        print(f"  {name:40s} {os.path.getsize(os.path.join(dataset_dir, name)):>10d} bytes")
    if not shards:
        problems.append("no train.tfrecord-* shard")
    if not os.path.exists(manifest_path):
        return problems + ["no train_manifest.json"]
    with open(manifest_path) as f:
        manifest = json.load(f)
    written = manifest["examples_written"]
    records = _count_records(os.path.join(dataset_dir, "train.tfrecord-*"))
    print(f"Manifest: files matched {manifest['files_matched']}, read {manifest['files_read']}, "
          f"skipped {manifest['files_skipped']}; examples written {written}; "
          f"{manifest['audio_seconds']:.1f} s of audio; CREPE {manifest['settings']['crepe_capacity']}")
    print(f"Records in the train shards: {records}")
    if records != written.get("train", 0):
        problems.append(f"the shards hold {records} examples, the manifest says {written.get('train', 0)}")
    if written.get("total", 0) == 0:
        problems.append("no example written")
    if manifest["files_read"] == 0:
        problems.append("no file read")
    return problems


def main(argv=None):
    args = _parse_args(argv)
    pipeline_root = os.path.abspath(args.pipeline_root)
    _make_writable_for_image(pipeline_root)
    audio_pattern = _stage_audio(args.audio_dir, pipeline_root)

    from kfp import local

    from components.image import make_component
    from components.prepare_tfrecord import component

    prepare_tfrecord = make_component(component.prepare_tfrecord, args.image)
    image = prepare_tfrecord.component_spec.implementation.container.image
    print(f"Component image: {image}; DOCKER_HOST={os.environ.get('DOCKER_HOST', '(unset)')}")
    local.init(runner=local.DockerRunner(), pipeline_root=pipeline_root, raise_on_error=True)
    start = time.time()
    task = prepare_tfrecord(audio_pattern=audio_pattern, preset="quick", crepe_capacity=args.crepe_capacity)
    seconds = time.time() - start
    dataset = task.outputs["dataset"]
    print(f"prepare_tfrecord ran in the container in {seconds:.0f} s; output artifact: {dataset.uri}")
    print(f"Artifact metadata: {json.dumps(dataset.metadata, sort_keys=True)}")
    problems = check_dataset(dataset.path)
    if problems:
        print("FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    print("OK: TFRecord shards and manifest written by the component in the container.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
