# The README's commands. Every target installs into .venv first (created if missing).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install test repro clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

test: install
	$(PY) -m pytest

# DVC does not put the venv on PATH, so stages run with it activated.
repro: install
	. $(VENV)/bin/activate && dvc repro

clean-venv:
	rm -rf $(VENV)
