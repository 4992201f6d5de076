# Every target calls the `rlhf` CLI (vertex_rlhf/cli/) or a script in scripts/.
# Variables: ENV=dev|prod|local|path/to/file.yaml  OVERRIDES="training.kl_coeff=0.2 ..."
#            VERSION=1.0.0 (a registry tag)  WAIT=1  DRY_RUN=1  YES=1  JOB=<job id or resource name>
#            JOBS="<id> <id> ..."  LAST=<N>  (make compare)
#            CRON='0 3 * * 1' (or 'TZ=Europe/Paris 0 3 * * 1')  NAME=<schedule name>  (schedules)
# make passes every value to the CLI as raw text, and the CLI's one door reads it
# (vertex_rlhf/config/values.py): WAIT, DRY_RUN and YES take 1/0, true/false, yes/no,
# on/off; OVERRIDES, ARGS and JOBS are split with shell quoting rules
# (OVERRIDES="training.instruction='Summarize briefly'"), never by a shell.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RLHF   := $(BIN)/rlhf
ENV    ?= dev
OVERRIDES ?=
JOB    ?=
JOBS   ?=
LAST   ?=
# User-set variables reach the shell only through $(call q,VAR): their raw text
# ($(value), so make never expands $(...) in them) as one single-quoted word, which the
# CLI reads. They are not exported to recipes either, which would expand them.
USER_VARS := ENV OVERRIDES JOB JOB_ID JOBS LAST VERSION WAIT DRY_RUN YES IN OUT KIND ARGS CONFIG A B JSON CRON NAME
unexport $(USER_VARS)
q  = '$(subst ','\'',$(value $(1)))'
# A list variable as one argument, split by the CLI with shell quoting rules (a newline,
# which would end the recipe line, counts as a space).
define newline


endef
qwords = '$(subst $(newline), ,$(subst ','\'',$(value $(1))))'
qlist = $(if $(value $(1)),--shell-words $(call qwords,$(1)))
# A yes/no variable as --flag=RAW (the CLI reads RAW; empty means unset).
qflag = $(if $(value $(1)),$(2)=$(call q,$(1)))
# Flags for `rlhf submit`, from the make variables that are set.
SUBMIT_FLAGS = $(if $(value VERSION),--version $(call q,VERSION)) \
               $(call qflag,WAIT,--wait) $(call qflag,DRY_RUN,--dry-run) $(call qflag,YES,--yes) \
               $(if $(value JOB_ID),--job-id $(call q,JOB_ID))
# Flags for `rlhf schedule` and its siblings.
# (--flag=VALUE: a value that starts with "-" stays the flag's value.)
SCHEDULE_FLAGS = $(if $(value VERSION),--version=$(call q,VERSION)) $(if $(value NAME),--name=$(call q,NAME)) \
                 $(call qflag,DRY_RUN,--dry-run) $(call qflag,YES,--yes)
NEED_NAME = @test -n $(call q,NAME) || { echo "error[CONFIG_002]: set NAME=<schedule name> (make schedules ENV=... lists them)" >&2; exit 12; }

.DEFAULT_GOAL := help
.PHONY: help setup compile check-compiled test test-no-orjson lint ci checks docs check steps validate-data \
        convert-data bench-data plan doctor submit publish versions monitor metrics report compare runs cancel migrate-config diff clean \
        schedule schedules schedule-pause schedule-resume schedule-delete

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(VENV)/.installed ## create .venv and install the pinned dependencies (constraints.txt)

# The oldest Python the project runs on: requires-python in pyproject.toml (one source).
PY_NEEDED := $(shell sed -n 's/^requires-python *= *">= *\([0-9.]*\)".*/\1/p' pyproject.toml)

# Checks the interpreter before anything is created, and removes .venv again if any step
# fails, so a failed setup never leaves a half-made .venv for later runs to trip over.
# The fix names an interpreter on PATH that is new enough, so it works as printed.
PY_OK := import sys; sys.exit(sys.version_info[:2] < tuple(int(p) for p in "$(PY_NEEDED)".split(".")))
$(VENV)/.installed: pyproject.toml constraints.txt
	@'$(PYTHON)' -c '$(PY_OK)' 2>/dev/null || { \
	  echo "error[CONFIG_002]: PYTHON=$(PYTHON) is $$(command -v '$(PYTHON)' >/dev/null && '$(PYTHON)' --version 2>&1 || echo 'not found'); this project needs Python $(PY_NEEDED) or newer (requires-python in pyproject.toml)" >&2; \
	  found=; for p in python3.14 python3.13 python3.12 python3.11 python3.10 python3; do \
	    command -v $$p >/dev/null 2>&1 && $$p -c '$(PY_OK)' 2>/dev/null && { found=$$(command -v $$p); break; }; done; \
	  if [ -n "$$found" ]; then echo "  fix: make setup PYTHON=$$found" >&2; \
	  else echo "  fix: install Python $(PY_NEEDED) or newer, then run make setup PYTHON=/path/to/that/python3" >&2; fi; \
	  exit 12; }
	'$(PYTHON)' -m venv --clear $(VENV) || { rm -rf $(VENV); exit 1; }
	$(BIN)/pip install --quiet --upgrade "pip>=24" || { rm -rf $(VENV); exit 1; }
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]" || { rm -rf $(VENV); exit 1; }
	@touch $@

compile: setup ## compile the pipeline into compiled/ (offline, byte-identical when unchanged)
	$(RLHF) compile

check-compiled: setup ## fail if compiled/ is stale against the sources
	$(RLHF) compile --check

# Most of the suite waits (stand-in servers, subprocesses, timeouts) rather than computes:
# four worker processes (pytest-xdist) beat two on a 2-core machine. Each worker has its
# own stand-ins, storage emulator and tmp_path; `.venv/bin/pytest` alone runs in one process.
test: setup ## run the test suite
	$(BIN)/pytest -n 4

# GCPC's image may lack orjson: the dataset rules must give the same verdict without it.
NO_ORJSON_TESTS = tests/test_dataset_rules.py tests/test_parser_parity.py tests/test_dataset_paths.py \
  tests/test_dataset_duplicate_keys.py tests/test_parallel_validation.py tests/test_parallel_files.py
test-no-orjson: setup ## run the dataset rules tests in a process that cannot import orjson
	$(BIN)/python -c "import sys; sys.modules['orjson'] = None; import pytest; \
	  sys.exit(pytest.main(['-p', 'no:cacheprovider', *'$(NO_ORJSON_TESTS)'.split()]))"

lint: setup ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

ci: lint test checks ## what CI runs offline (.ci/run, .github/workflows/ci.yml): lint, tests, checks

checks: check-compiled test-no-orjson ## drift and parity: compiled/ and docs/parameters.md fresh, rules without orjson
	$(RLHF) reference --check

docs: setup ## regenerate docs/parameters.md from the schema
	$(RLHF) reference

check: setup ## check params/ENV.yaml against the schema and the compiled pipeline
	$(RLHF) check $(call q,ENV) $(call qlist,OVERRIDES) --print

steps: setup ## print the training steps a run of ENV will get
	$(RLHF) steps $(call q,ENV) $(call qlist,OVERRIDES)

validate-data: setup ## validate and profile the datasets of ENV (local or gs://)
	$(RLHF) validate-data $(call q,ENV) $(call qlist,OVERRIDES)

convert-data: setup ## convert IN=... to OUT=... (KIND=preference|prompt; ARGS="--seed 1 ...")
	@test -n $(call q,IN) -a -n $(call q,OUT) || { echo "error[CONFIG_002]: set IN=, OUT= and KIND=" >&2; exit 12; }
	$(RLHF) convert-data $(call q,IN) $(call q,OUT) --kind $(if $(value KIND),$(call q,KIND),preference) $(call qlist,ARGS)

bench-data: setup ## benchmark validation and conversion on realistic rows (10 MB-1 GB, gs:// shards, no-op compile)
	$(BIN)/python -m vertex_rlhf.config.values scripts/bench_data.py $(call qwords,ARGS)

plan: setup ## print what a run of ENV will book (machines from GCPC's specs, steps, stages, cache)
	$(RLHF) plan $(call q,ENV) $(call qlist,OVERRIDES)

doctor: setup ## check ENV can run: credentials, project, APIs, bucket, service account, quota
	$(RLHF) doctor $(call q,ENV) $(call qlist,OVERRIDES)

submit: setup ## submit a run of ENV [VERSION=tag] [WAIT=1] [DRY_RUN=1] [YES=1] [JOB_ID=id]
	$(RLHF) submit $(call q,ENV) $(call qlist,OVERRIDES) $(SUBMIT_FLAGS)

publish: setup ## publish the compiled template to vertex_ai.template_registry of ENV
	$(RLHF) publish $(call q,ENV) $(call qlist,OVERRIDES)

versions: setup ## list the published template versions and their tags
	$(RLHF) versions $(call q,ENV) $(call qlist,OVERRIDES)

diff: setup ## what changed between template versions A=... and B=... [ENV=...] [JSON=1]
	@test -n $(call q,A) -a -n $(call q,B) || { echo "error[CONFIG_002]: set A= and B= (template versions, e.g. make diff A=1.1.1 B=1.2.0)" >&2; exit 12; }
	$(RLHF) diff $(if $(filter command line environment,$(origin ENV)),--env $(call q,ENV)) $(call qflag,JSON,--json) -- $(call q,A) $(call q,B) $(call qlist,OVERRIDES)

monitor: setup ## follow run JOB=... to its end (Ctrl-C stops watching, never cancels)
	@test -n $(call q,JOB) || { echo "error[CONFIG_002]: set JOB=<job id or resource name>" >&2; exit 12; }
	$(RLHF) monitor $(call q,JOB) --env $(call q,ENV) $(call qlist,OVERRIDES)

metrics: setup ## training metrics of run JOB=...: runs/JOB.jsonl, a summary, runs/JOB.png
	@test -n $(call q,JOB) || { echo "error[CONFIG_002]: set JOB=<job id or resource name>" >&2; exit 12; }
	$(RLHF) metrics $(call q,JOB) --env $(call q,ENV) $(call qlist,OVERRIDES)

report: setup ## a run's report JOB=... as one self-contained page: runs/JOB.html [ARGS="--samples 10"]
	@test -n $(call q,JOB) || { echo "error[CONFIG_002]: set JOB=<job id or resource name>" >&2; exit 12; }
	$(RLHF) report $(call q,JOB) --env $(call q,ENV) $(call qlist,OVERRIDES) $(call qlist,ARGS)

compare: setup ## compare runs JOBS="a b ..." (or the LAST=N runs of ENV): table, runs/compare.png
	$(RLHF) compare --jobs $(call q,JOBS) $(if $(value LAST),--last $(call q,LAST)) --env $(call q,ENV) $(call qlist,OVERRIDES)

runs: setup ## list recent runs of the pipeline in ENV's project and region
	$(RLHF) runs $(call q,ENV) $(call qlist,OVERRIDES)

cancel: setup ## cancel run JOB=...
	@test -n $(call q,JOB) || { echo "error[CONFIG_002]: set JOB=<job id or resource name>" >&2; exit 12; }
	$(RLHF) cancel $(call q,JOB) --env $(call q,ENV) $(call qlist,OVERRIDES)

schedule: setup ## create or update ENV's schedule of a published version: CRON='0 3 * * 1' [VERSION=tag] [NAME=name] [DRY_RUN=1] [YES=1]
	@test -n $(call q,CRON) || { echo "error[CONFIG_002]: set CRON='minute hour day-of-month month day-of-week', e.g. CRON='0 3 * * 1' or CRON='TZ=Europe/Paris 0 3 * * 1'" >&2; exit 12; }
	$(RLHF) schedule $(call q,ENV) $(call qlist,OVERRIDES) --cron=$(call q,CRON) $(SCHEDULE_FLAGS)

schedules: setup ## list ENV's schedules: name, cron, state, version and digest, next run, last run
	$(RLHF) schedules $(call q,ENV) $(call qlist,OVERRIDES)

schedule-pause: setup ## pause ENV's schedule NAME=... (no new runs; a running one goes on)
	$(NEED_NAME)
	$(RLHF) schedule-pause $(call q,ENV) $(call qlist,OVERRIDES) --name=$(call q,NAME)

schedule-resume: setup ## resume ENV's paused schedule NAME=... (missed runs are skipped)
	$(NEED_NAME)
	$(RLHF) schedule-resume $(call q,ENV) $(call qlist,OVERRIDES) --name=$(call q,NAME)

schedule-delete: setup ## delete ENV's schedule NAME=... (the runs it started go on)
	$(NEED_NAME)
	$(RLHF) schedule-delete $(call q,ENV) $(call qlist,OVERRIDES) --name=$(call q,NAME)

migrate-config: setup ## write params/<env>.yaml from an original-layout CONFIG=old.yaml [ENV=name]
	@test -n $(call q,CONFIG) || { echo "error[CONFIG_002]: set CONFIG=<original config file>" >&2; exit 12; }
	$(RLHF) migrate-config $(call q,CONFIG) $(if $(filter command line environment,$(origin ENV)),--env $(call q,ENV))

clean: ## remove the virtualenv and caches (compiled/ is kept: it is committed)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
