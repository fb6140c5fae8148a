# make demo / make test / make bench: each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tests and benchmarks find the shared data sets here unless told otherwise.
export LSTMLAB_DATA ?= $(abspath ../shared/data)
export KERAS_BACKEND ?= jax
# Two workers suit the 2-core CI machine; override with make test PYTEST_WORKERS=1. Tests
# that compile the same programs share an xdist group, run in one worker (conftest.py).
PYTEST_WORKERS ?= 2
PYTEST_DIST := --dist loadgroup --no-loadscope-reorder

.PHONY: demo test bench parity lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m lstmlab moving-average --out runs/demo --overwrite

test: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_DIST) -q

lint: $(STAMP)
	$(PY) -m ruff check src tests bench

bench: $(STAMP)
	$(PY) bench/run_all.py

# Training parity against Keras with its TensorFlow backend (a large install, kept out of make test).
parity: $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,parity]"
	$(PY) -m pytest -q tests/parity

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
