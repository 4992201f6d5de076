# Every target calls the `rlhf` CLI (vertex_rlhf/cli.py) or a script in scripts/.
# Variables: ENV=dev|prod|local  OVERRIDES="training.kl_coeff=0.2 ..."
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RLHF   := $(BIN)/rlhf
ENV    ?= dev
OVERRIDES ?=

.DEFAULT_GOAL := help
.PHONY: help setup compile check-compiled test lint check steps clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(VENV)/.installed ## create .venv and install the pinned dependencies (constraints.txt)

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

compile: setup ## compile the pipeline into compiled/ (offline, byte-identical when unchanged)
	$(RLHF) compile

check-compiled: setup ## fail if compiled/ is stale against the sources
	$(RLHF) compile --check

test: setup ## run the test suite
	$(BIN)/pytest

lint: setup ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check: setup ## check params/$(ENV).yaml against the schema and the compiled pipeline
	$(RLHF) check $(ENV) $(OVERRIDES) --print

steps: setup ## print the training steps a run of $(ENV) will get
	$(RLHF) steps $(ENV) $(OVERRIDES)

clean: ## remove the virtualenv and caches (compiled/ is kept: it is committed)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
