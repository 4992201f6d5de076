# Every target calls the `rlhf` CLI (vertex_rlhf/cli.py) or a script in scripts/.
# Variables: ENV=dev|prod|local  OVERRIDES="training.kl_coeff=0.2 ..."
#            VERSION=1.0.0 (a registry tag)  WAIT=1  DRY_RUN=1  JOB=<job id or resource name>
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RLHF   := $(BIN)/rlhf
ENV    ?= dev
OVERRIDES ?=
JOB    ?=
# User-set variables reach the shell only through $(call q,VAR) (one word) or
# $(call qw,VAR) (one word per whitespace-separated item): their raw text ($(value),
# so make never expands $(...) in them) in single quotes. They are not exported to
# recipes either, which would expand them.
USER_VARS := ENV OVERRIDES JOB JOB_ID VERSION WAIT DRY_RUN IN OUT KIND ARGS
unexport $(USER_VARS)
q  = '$(subst ','\'',$(value $(1)))'
qw = $(foreach w,$(value $(1)),'$(subst ','\'',$(w))')
# Flags for `rlhf submit`, from the make variables that are set.
SUBMIT_FLAGS = $(if $(value VERSION),--version $(call q,VERSION)) \
               $(if $(filter 1,$(value WAIT)),--wait) $(if $(filter 1,$(value DRY_RUN)),--dry-run) \
               $(if $(value JOB_ID),--job-id $(call q,JOB_ID))

.DEFAULT_GOAL := help
.PHONY: help setup compile check-compiled test lint check steps validate-data convert-data bench-data submit publish versions \
        monitor runs cancel clean

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

check: setup ## check params/ENV.yaml against the schema and the compiled pipeline
	$(RLHF) check $(call q,ENV) $(call qw,OVERRIDES) --print

steps: setup ## print the training steps a run of ENV will get
	$(RLHF) steps $(call q,ENV) $(call qw,OVERRIDES)

validate-data: setup ## validate and profile the datasets of ENV (local or gs://)
	$(RLHF) validate-data $(call q,ENV) $(call qw,OVERRIDES)

convert-data: setup ## convert IN=... to OUT=... (KIND=preference|prompt; ARGS="--seed 1 ...")
	@test -n $(call q,IN) -a -n $(call q,OUT) || { echo "error[CONFIG_002]: set IN=, OUT= and KIND=" >&2; exit 12; }
	$(RLHF) convert-data $(call q,IN) $(call q,OUT) --kind $(if $(value KIND),$(call q,KIND),preference) $(call qw,ARGS)

bench-data: setup ## benchmark validation and conversion (100 MB and ~1 GB files, gs:// shards)
	$(BIN)/python scripts/bench_data.py $(call qw,ARGS)

submit: setup ## submit a run of ENV [VERSION=tag] [WAIT=1] [DRY_RUN=1] [JOB_ID=id]
	$(RLHF) submit $(call q,ENV) $(call qw,OVERRIDES) $(SUBMIT_FLAGS)

publish: setup ## publish the compiled template to vertex_ai.template_registry of ENV
	$(RLHF) publish $(call q,ENV) $(call qw,OVERRIDES)

versions: setup ## list the published template versions and their tags
	$(RLHF) versions $(call q,ENV) $(call qw,OVERRIDES)

monitor: setup ## follow run JOB=... to its end (Ctrl-C stops watching, never cancels)
	@test -n $(call q,JOB) || { echo "error[CONFIG_002]: set JOB=<job id or resource name>" >&2; exit 12; }
	$(RLHF) monitor $(call q,JOB) --env $(call q,ENV) $(call qw,OVERRIDES)

runs: setup ## list recent runs of the pipeline in ENV's project and region
	$(RLHF) runs $(call q,ENV) $(call qw,OVERRIDES)

cancel: setup ## cancel run JOB=...
	@test -n $(call q,JOB) || { echo "error[CONFIG_002]: set JOB=<job id or resource name>" >&2; exit 12; }
	$(RLHF) cancel $(call q,JOB) --env $(call q,ENV) $(call qw,OVERRIDES)

clean: ## remove the virtualenv and caches (compiled/ is kept: it is committed)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
