# lotterybook: the two commands of the README are `make book` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
GLUE ?= $(abspath ../shared/glue_data)
export LOTTERY_GLUE_DIR ?= $(GLUE)
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: venv test test-fast bench lock clean book experiments figures unlock

# A virtual environment with the exact tested versions (torch first: pinned, CPU build here).
$(BIN)/.installed: requirements/lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -r requirements/lock.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

venv: $(BIN)/.installed

# --- the book: experiments (workflow) -> figure notebooks -> strict Jupyter Book build ------------------------
# make book [PLAN=demo] [GRID=committed|run] [CORES=2] [CONFIG="tasks=MRPC seeds=1337"] [SNAKEMAKE_ARGS="--profile profiles/multigpu"]
#  1. the plan's experiment grid (Snakefile, rule experiments): runs only what is missing or was left incomplete
#     (--rerun-incomplete); committed results count as done (every input is ancient(); --rerun-triggers mtime
#     keeps an edited notebook or Snakefile from redoing a grid);
#  2. every notebooks/figures/*.ipynb executed with papermill into book/figures/ (rule figure), re-executed every
#     time (--forcerun figure: they take seconds and must show the current results of the current PLAN);
#  3. jupyter-book build . --all -W -n --keep-going (strict: a warning fails the build).
# A failed papermill run fails Snakemake, and so make: no book is built from a notebook that failed. The
# executed notebooks are in logs/<plan>/ (kept when a job fails).
# GRID=committed (the default for the demo plan, whose grid takes CPU-hours): draw the committed results only and
# compute nothing (Snakemake's committed_only); GRID=run (the default for other plans): run what is missing first.
PLAN ?= demo
GRID ?= $(if $(filter demo,$(PLAN)),committed,run)
CORES ?= 2
CONFIG ?=
SNAKEMAKE_ARGS ?=
SNAKEMAKE = $(BIN)/snakemake --cores $(CORES) --rerun-incomplete --rerun-triggers mtime $(SNAKEMAKE_ARGS) \
	--config plan=$(PLAN) $(CONFIG)
# (committed: --nolock, as it only reads result files, so it can draw while a grid runs in the same folder)
ifeq ($(GRID),committed)
FIGURE_PREREQS = venv
FIGURE_CONFIG = committed_only=1 --nolock
else ifeq ($(GRID),run)
FIGURE_PREREQS = experiments
FIGURE_CONFIG =
else
$(error GRID must be run or committed, not '$(GRID)')
endif

experiments: venv  ## the plan's experiment grid only (resumable: run it again to go on)
	@# a notice when the plan trains in bf16 and this machine's CPU would emulate it (lotterylib/run/precision.py)
	@$(BIN)/python -m lotterylib.run.precision $(PLAN)
	$(SNAKEMAKE) -- experiments

figures: $(FIGURE_PREREQS)  ## execute the figure notebooks into book/figures/ (always re-executed)
	$(SNAKEMAKE) $(FIGURE_CONFIG) --forcerun figure -- figures

book: figures  ## experiments, figure notebooks, then the strict book build (HTML in _build/html)
	$(BIN)/jupyter-book build . --all -W -n --keep-going

unlock: venv  ## after a crash (kill -9, power loss) Snakemake's lock stays: lift it (then make book redoes the rest)
	$(SNAKEMAKE) --unlock

test: venv  ## the whole test suite
	$(BIN)/python -m pytest -q

test-fast: venv  ## skip the tests that load the real model or full data files
	$(BIN)/python -m pytest -q -m "not slow"

bench: venv  ## the engine and explorer benchmarks (about 6 minutes on 2 cores); writes benchmarks/results/
	$(BIN)/python benchmarks/bench_engine.py
	cd benchmarks && $(abspath $(BIN))/python bench_explorer.py

lock: venv  ## re-pin requirements/lock.txt from the current environment
	{ echo "# Exact versions lotterybook was tested with (Python 3.11, CPU). Regenerate with: make lock"; \
	  echo "# torch is pinned to 2.13.0: on this project's CPU machines pip takes the local CPU build."; \
	  $(BIN)/python -m pip freeze | grep -v -iE '^-e |^lotterylib' | sed 's/^torch==\([0-9.]*\)+cpu/torch==\1/'; \
	} > requirements/lock.txt

clean:
	rm -rf _build .pytest_cache
