# gfm-companion: the two commands of the README are `make repro` and `make test`.
# Both build the virtual environment at .venv first (idempotent: redone only when
# pyproject.toml or constraints.txt change).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export NUMBA_CACHE_DIR ?= $(HOME)/.cache/gfm-companion/numba
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: setup repro test lab lock paper-profile sample-profile clean-artifacts

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt .jupyter/jupyter_server_config.py Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -qq -c constraints.txt -e '.[dev]'
	@# JupyterLab saves the stage notebooks without outputs (see .jupyter/jupyter_server_config.py)
	@mkdir -p $(VENV)/etc/jupyter && cp .jupyter/jupyter_server_config.py $(VENV)/etc/jupyter/
	@# `dvc plots show` offline: an HTML template with Vega inlined (from vl-convert), set in .dvc/config
	@mkdir -p .dvc/plots && $(BIN)/python -c "import pathlib, vl_convert as v; pathlib.Path('.dvc/plots/offline.html').write_text('<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>gfm-companion plots</title><script>' + v.javascript_bundle() + '</script></head><body>{plot_divs}</body></html>')"
	@touch $(STAMP)

## Command 1: set up and regenerate every result on the embedded world (offline, CPU).
repro: $(STAMP)
	$(BIN)/dvc repro
	@$(BIN)/python -m gfm.report.findings metrics/findings.json

## Command 2: set up and run the test suite.
test: $(STAMP)
	$(BIN)/python -m pytest -q

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=.

paper-profile: $(STAMP)
	$(BIN)/gfm profile paper

sample-profile: $(STAMP)
	$(BIN)/gfm profile sample

lock: $(STAMP)
	(echo "# Exact pins used by 'make setup' (pip -c). Regenerate with: make lock"; \
	 $(BIN)/python -m pip freeze --exclude-editable) > constraints.txt.tmp && mv constraints.txt.tmp constraints.txt
