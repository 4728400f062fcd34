# Two targets do everything on a fresh machine (see README.md):
#   make run    set up the environment and run the main job
#   make test   set up the environment and run the tests
# The environment is a virtualenv in .venv, (re)built only when pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out
# Quiet TensorFlow's C++ start-up logs (set TF_CPP_MIN_LOG_LEVEL=0 to see them).
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup run play tensorboard compile image demo prepare train eval sample test test-tf test-jax bench bench-magenta bench-profile bench-seeds clean test-slow rehearse

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is needed: set PYTHON=/path/to/python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[tf,jax,prepare,pipeline,dev]'
	touch $(STAMP)

# The main job: the whole clarinet pipeline (prepare -> train -> eval, sample) on the bundled
# notes with kfp's local runner and the quick preset (about 10 minutes on 2 cores). Artifacts go
# to $(OUT)/pipeline; the last lines printed say where, and how to open TensorBoard.
# PIPELINE_ARGS passes more flags, e.g. PIPELINE_ARGS="--preset full --audio '/data/*.wav'".
PIPELINE_ARGS ?=
run: $(STAMP)
	$(VENV)/bin/ddsp_pipeline run --pipeline-root $(OUT)/pipeline $(PIPELINE_ARGS)

# Play the model of the last `make run`: the built-in melody from MIDI into $(OUT)/play/melody.wav
# (and .png). PLAY_ARGS passes more ddsp_play flags, e.g. PLAY_ARGS="--midi song.mid" or
# PLAY_ARGS="--audio voice.wav" (timbre transfer).
PLAY_ARGS ?=
play: $(STAMP)
	@model=$$(ls -td $(OUT)/pipeline/*/export/exported $(OUT)/pipeline/*/train/model 2>/dev/null | head -1); \
	if [ -z "$$model" ]; then echo "No trained model under $(OUT)/pipeline: run 'make run' first." >&2; exit 2; fi; \
	echo "Playing $$model"; \
	$(VENV)/bin/ddsp_play --model "$$model" --output $(OUT)/play/melody.wav $(PLAY_ARGS)

# TensorBoard on the runs of `make run` (train, eval and sample curves of every run under
# $(OUT)/pipeline); LOGDIR picks another folder, e.g. LOGDIR=out/runs/clarinet (make train).
LOGDIR ?= $(OUT)/pipeline
tensorboard: $(STAMP)
	$(VENV)/bin/tensorboard --logdir $(LOGDIR)

# Recompile pipelines/clarinet.yaml (commit it; a test fails when it is out of date).
compile: $(STAMP)
	$(VENV)/bin/ddsp_pipeline compile

# The container image (see docker/README.md): build it with podman and run the prepare_tfrecord
# component in it through kfp's DockerRunner (as root, after docker/setup_podman.sh).
image: $(STAMP)
	docker/podman_run_component.sh

# The DSP library on its own: a synthesized tone, filtered noise and reverb into $(OUT)/synth_demo.
demo: $(STAMP)
	$(PY) examples/synth_demo.py $(OUT)/synth_demo

# The steps by hand, as magenta ddsp users run them (make prepare train eval sample).
RUN_DIR ?= $(OUT)/runs/clarinet
TFRECORDS ?= $(OUT)/tfrecords/train.tfrecord*
# make prepare writes the validation clarinet here: eval and sample measure on it.
EVAL_TFRECORDS ?= $(OUT)/tfrecords/eval.tfrecord*
STEPS ?= 30
BATCH ?= 8
DATA_GIN := --gin_file=datasets/tfrecord.gin --gin_param="TFRecordProvider.file_pattern='$(TFRECORDS)'"
EVAL_DATA_GIN := --gin_file=datasets/tfrecord.gin --gin_param="TFRecordProvider.file_pattern='$(EVAL_TFRECORDS)'"
train: $(STAMP)
	$(VENV)/bin/ddsp_run --mode=train --alsologtostderr --save_dir=$(RUN_DIR) \
	  --gin_file=models/solo_instrument_dry.gin --gin_file=augmentation/gain.gin $(DATA_GIN) \
	  --gin_param="batch_size=$(BATCH)" --gin_param="train_util.train.num_steps=$(STEPS)" \
	  --gin_param="train.steps_per_save=10" --gin_param="train.steps_per_summary=10" --allow_memory_growth

eval: $(STAMP)
	$(VENV)/bin/ddsp_run --mode=eval --alsologtostderr --save_dir=$(RUN_DIR) $(EVAL_DATA_GIN) \
	  --gin_file=eval/basic_f0_ld.gin --run_once --allow_memory_growth

sample: $(STAMP)
	$(VENV)/bin/ddsp_run --mode=sample --alsologtostderr --save_dir=$(RUN_DIR) $(EVAL_DATA_GIN) \
	  --gin_file=eval/basic_f0_ld.gin --run_once --allow_memory_growth
	@echo "Listen: $(RUN_DIR)/samples/index.html   TensorBoard: $(VENV)/bin/tensorboard --logdir $(RUN_DIR)"

CREPE ?= full
prepare: $(STAMP)
	$(VENV)/bin/ddsp_prepare_tfrecord \
	  --input_audio_filepatterns='data/clarinet/train/*.flac' \
	  --eval_audio_filepatterns='data/clarinet/validation/*.flac' \
	  --output_tfrecord_path=$(OUT)/tfrecords/train.tfrecord \
	  --num_shards=4 --crepe_capacity=$(CREPE) --crepe_precision=auto --overwrite --alsologtostderr

# All tests on the TensorFlow backend, then the backend-agnostic DSP tests on JAX.
test: test-tf test-jax

# The DSP and model tests (marked dsp: in-process, CPU-bound) on two pytest-xdist workers, the
# rest (pipelines, subprocesses, timing) one at a time.
test-tf: $(STAMP)
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q -n 2 -m dsp tests
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q -m "not dsp" tests

# The same tests on JAX, on two workers (3.5 min instead of 5 here).
test-jax: $(STAMP)
	KERAS_BACKEND=jax $(PY) -m pytest -q -n 2 -m dsp tests

bench: $(STAMP)
	$(PY) -m benchmarks.bench_dsp
	$(PY) -m benchmarks.bench_crepe
	$(PY) -m benchmarks.bench_prepare
	$(PY) -m benchmarks.bench_train

# Ours against magenta ddsp 3.7.0 on the same machine in one run (~20 min; builds magenta's venv
# on first use; needs python3.11 and ffprobe (apt ffmpeg)), and where the train step's time goes.
bench-magenta: $(STAMP)
	$(PY) -m benchmarks.compare_magenta --markdown --json $(OUT)/bench/compare_magenta.json

bench-profile: $(STAMP)
	$(PY) -m benchmarks.profile_train_step --markdown

# The quick recipe with 8 seeds, one at a time (~80 min on 2 cores); SEEDS_ARGS passes more flags,
# e.g. SEEDS_ARGS="--recipes after,quick --interleave". Runs stay in $(OUT)/bench/seeds (resumable,
# found by folder name: delete the quick-seed* folders after the preset changes).
SEEDS_ARGS ?=
bench-seeds: $(STAMP)
	$(PY) -m benchmarks.seeds --markdown --out $(OUT)/bench/seeds $(SEEDS_ARGS)

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache

# The rehearsals: the whole pipeline (tiny) in podman containers as Vertex AI and Kubeflow run it,
# and the failures they catch (~6-20 min here; pipelines/REHEARSAL.md). Needs podman and the
# images in podman's store: REHEARSAL_IMAGE (train's, the Dockerfile's cuda target) and
# REHEARSAL_CPU_IMAGE (the other steps', target cpu); REHEARSAL_CUDA_IMAGE (a cuda build) adds
# the check that the node's driver folder is on the loader's path. Without a CUDA image:
# make rehearse REHEARSAL_IMAGE=localhost/ddsp-pipeline:0.1.0-cpu (train then runs the CPU image).
REHEARSAL_IMAGE ?= localhost/ddsp-pipeline:0.1.0
REHEARSAL_CPU_IMAGE ?= localhost/ddsp-pipeline:0.1.0-cpu
REHEARSAL_CUDA_IMAGE ?=
rehearse: $(STAMP)
	@for image in $(REHEARSAL_IMAGE) $(REHEARSAL_CPU_IMAGE) $(REHEARSAL_CUDA_IMAGE); do \
	  podman image exists $$image || { echo "make rehearse: podman has no image $$image: build it (docker/README.md; e.g. podman build --target cpu -t $(REHEARSAL_CPU_IMAGE) .) or name another with REHEARSAL_IMAGE=/REHEARSAL_CPU_IMAGE=." >&2; exit 2; }; \
	done
	DDSP_REHEARSAL_IMAGE=$(REHEARSAL_IMAGE) DDSP_REHEARSAL_CPU_IMAGE=$(REHEARSAL_CPU_IMAGE) \
	  DDSP_REHEARSAL_CUDA_IMAGE=$(REHEARSAL_CUDA_IMAGE) \
	  $(PY) -m pytest -q -p no:xdist --rehearsal tests/pipelines/test_rehearsal.py

# The tests marked slow (whole multi-run workflows, e.g. a local 2-trial `ddsp_pipeline tune`; minutes).
test-slow: $(STAMP)
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q -p no:xdist --slow -m slow tests
