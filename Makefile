# Every target calls the `rlhf` CLI (vertex_rlhf/cli.py) or a script in scripts/.
# Variables: ENV=dev|prod|local  OVERRIDES="training.kl_coeff=0.2 ..."
#            VERSION=1.0.0 (a registry tag)  WAIT=1  DRY_RUN=1  JOB=<job id or resource name>
#            JOBS="<id> <id> ..."  LAST=<N>  (make compare)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RLHF   := $(BIN)/rlhf
ENV    ?= dev
OVERRIDES ?=
JOB    ?=
JOBS   ?=
LAST   ?=
# Single-quotes user text for the shell (JOB, JOBS, ...): no word splitting, no expansion.
quote = '$(subst ','\'',$(1))'
# Flags for `rlhf submit`, from the make variables that are set.
SUBMIT_FLAGS = $(if $(VERSION),--version $(VERSION)) $(if $(filter 1,$(WAIT)),--wait) \
               $(if $(filter 1,$(DRY_RUN)),--dry-run) $(if $(JOB_ID),--job-id $(JOB_ID))

.DEFAULT_GOAL := help
.PHONY: help setup compile check-compiled test lint check steps validate-data convert-data bench-data submit publish versions \
        monitor metrics compare runs cancel clean

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
	$(RLHF) check $(ENV) $(OVERRIDES) --print

steps: setup ## print the training steps a run of ENV will get
	$(RLHF) steps $(ENV) $(OVERRIDES)

validate-data: setup ## validate and profile the datasets of ENV (local or gs://)
	$(RLHF) validate-data $(ENV) $(OVERRIDES)

convert-data: setup ## convert IN=... to OUT=... (KIND=preference|prompt; ARGS="--seed 1 ...")
	@test -n "$(IN)" -a -n "$(OUT)" || { echo "error[CONFIG_002]: set IN=, OUT= and KIND=" >&2; exit 12; }
	$(RLHF) convert-data $(IN) $(OUT) --kind $(or $(KIND),preference) $(ARGS)

bench-data: setup ## benchmark validation and conversion (100 MB and ~1 GB files, gs:// shards)
	$(BIN)/python scripts/bench_data.py $(ARGS)

submit: setup ## submit a run of ENV [VERSION=tag] [WAIT=1] [DRY_RUN=1] [JOB_ID=id]
	$(RLHF) submit $(ENV) $(OVERRIDES) $(SUBMIT_FLAGS)

publish: setup ## publish the compiled template to vertex_ai.template_registry of ENV
	$(RLHF) publish $(ENV) $(OVERRIDES)

versions: setup ## list the published template versions and their tags
	$(RLHF) versions $(ENV) $(OVERRIDES)

monitor: setup ## follow run JOB=... to its end (Ctrl-C stops watching, never cancels)
	@test -n "$(JOB)" || { echo "error[CONFIG_002]: set JOB=<job id or resource name>" >&2; exit 12; }
	$(RLHF) monitor $(JOB) --env $(ENV) $(OVERRIDES)

metrics: setup ## training metrics of run JOB=...: runs/JOB.jsonl, a summary, runs/JOB.png
	@test -n $(call quote,$(JOB)) || { echo "error[CONFIG_002]: set JOB=<job id or resource name>" >&2; exit 12; }
	$(RLHF) metrics $(call quote,$(JOB)) --env $(call quote,$(ENV)) $(OVERRIDES)

compare: setup ## compare runs JOBS="a b ..." (or the LAST=N runs of ENV): table, runs/compare.png
	$(RLHF) compare --jobs $(call quote,$(JOBS)) $(if $(LAST),--last $(call quote,$(LAST))) --env $(call quote,$(ENV)) $(OVERRIDES)

runs: setup ## list recent runs of the pipeline in ENV's project and region
	$(RLHF) runs $(ENV) $(OVERRIDES)

cancel: setup ## cancel run JOB=...
	@test -n "$(JOB)" || { echo "error[CONFIG_002]: set JOB=<job id or resource name>" >&2; exit 12; }
	$(RLHF) cancel $(JOB) --env $(ENV) $(OVERRIDES)

clean: ## remove the virtualenv and caches (compiled/ is kept: it is committed)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
