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

.PHONY: setup run prepare test test-tf test-jax bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is needed: set PYTHON=/path/to/python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[tf,jax,prepare,dev]'
	touch $(STAMP)

# The main job. Until the clarinet pipeline lands: the synth demo, then the prepare step on
# the bundled clarinet notes (full-size CREPE, a few minutes on 2 cores).
run: $(STAMP)
	$(PY) examples/synth_demo.py $(OUT)/synth_demo
	$(MAKE) prepare

CREPE ?= full
prepare: $(STAMP)
	$(VENV)/bin/ddsp_prepare_tfrecord \
	  --input_audio_filepatterns='data/clarinet/notes/*.flac' \
	  --output_tfrecord_path=$(OUT)/tfrecords/train.tfrecord \
	  --num_shards=4 --crepe_capacity=$(CREPE) --crepe_precision=auto --overwrite --alsologtostderr

# All tests on the TensorFlow backend, then the backend-agnostic DSP tests on JAX.
test: test-tf test-jax

test-tf: $(STAMP)
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q tests

test-jax: $(STAMP)
	KERAS_BACKEND=jax $(PY) -m pytest -q -m dsp tests

bench: $(STAMP)
	$(PY) benchmarks/bench_dsp.py
	$(PY) benchmarks/bench_crepe.py
	$(PY) benchmarks/bench_prepare.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
