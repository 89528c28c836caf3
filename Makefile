# The two commands of the README: `make book` and `make test`.
# Both bootstrap .venv from requirements.txt (exact pins) on a machine with Python 3.11 and pip.

PYTHON3 ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# Kernels started by papermill and nbval must find this environment's python first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# pip installs without compiling bytecode (half its time, most of it for modules never imported);
# Python writes the bytecode of what is imported on first import, which needs writing allowed.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: book test bench cross-cpu clean

$(INSTALLED): requirements.txt pyproject.toml
	$(PYTHON3) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-compile -r requirements.txt
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-compile --no-deps -e '.[interop]'
	touch $@

## Execute every chapter at its defaults and render _build/html/index.html.
book: $(INSTALLED)
	$(PYTHON) -m ihcore build

## Unit tests and nbval over the committed notebooks, two workers, the slowest files first (conftest.py).
test: $(INSTALLED)
	$(PYTHON) -m pytest -n 2 --dist loadfile --no-loadscope-reorder

## Wall times of the spine: training steps and each chapter at its defaults.
bench: $(INSTALLED)
	$(PYTHON) -m ihcore.book.bench

## Re-execute every chapter with seeds under another instruction-set setting; compare checked outputs and verdicts.
cross-cpu: $(INSTALLED)
	$(PYTHON) -m ihcore cross-cpu

clean:
	rm -rf _build
