# The README's commands. Every target installs into .venv first (created if missing).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

PROFILE ?=
# ALLOW_LONG=1: run even when the estimate exceeds BASISCONV_MAX_HOURS (default 3) on a machine without GPU
ALLOW_LONG ?=
PRE := python -m basisconv.pipeline.params check && BASISCONV_ALLOW_LONG=$(ALLOW_LONG) python -m basisconv.pipeline.estimate
.PHONY: install test repro bench smoke golden check-pipeline gpu-check clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

test: install
	$(PY) -m pytest

# DVC does not put the venv on PATH, so stages run with it activated. PROFILE=cpu (or "cpu mirror", smoke, ...)
# first composes params.yaml from profiles/; without PROFILE the current params.yaml is used as is.
# First: every param checked, and the wall time estimated (stops before a week-long CPU run; see basisconv.pipeline.estimate).
repro: install
	. $(VENV)/bin/activate && $(if $(PROFILE),python -m basisconv.pipeline.params $(PROFILE) &&) $(PRE) && dvc repro

# The timing benchmarks alone (dvc repro of the benchmark stage; upstream stages only if they are out of date).
bench: install
	. $(VENV)/bin/activate && $(if $(PROFILE),python -m basisconv.pipeline.params $(PROFILE) &&) python -m basisconv.pipeline.params check && dvc repro benchmark

# The whole pipeline on synthetic data in a few minutes, then checks of its outputs (what CI runs).
smoke: install
	. $(VENV)/bin/activate && python -m basisconv.pipeline.params smoke && $(PRE) && dvc repro && python tests/pipeline_check.py

# The golden pages (tests/test_golden.py), rendered again from their committed results (FROM_RUN=1: from the smoke run
# in the work tree first); review `git diff tests/golden` after.
FROM_RUN ?=
golden: install
	. $(VENV)/bin/activate && python tests/test_golden.py --update $(if $(FROM_RUN),--from-run)

# The GPU check: library dependencies only (no install, no DVC), synthetic data; report in $(OUT).
OUT ?= gpu-check-report
gpu-check:
	PYTHONPATH=src python3 -m basisconv.pipeline.gpucheck $(OUT)

check-pipeline: install
	. $(VENV)/bin/activate && python tests/pipeline_check.py

clean-venv:
	rm -rf $(VENV)
