# lotterybook: the two commands of the README are `make book` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
GLUE ?= $(abspath ../shared/glue_data)
export LOTTERY_GLUE_DIR ?= $(GLUE)
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: venv test test-fast bench lock clean

# A virtual environment with the exact tested versions (torch first: pinned, CPU build here).
$(BIN)/.installed: requirements/lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -r requirements/lock.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

venv: $(BIN)/.installed

test: venv  ## the whole test suite
	$(BIN)/python -m pytest -q

test-fast: venv  ## skip the tests that load the real model or full data files
	$(BIN)/python -m pytest -q -m "not slow"

bench: venv  ## the engine benchmark (about 10 minutes on 2 cores); writes benchmarks/results/
	$(BIN)/python benchmarks/bench_engine.py

lock: venv  ## re-pin requirements/lock.txt from the current environment
	{ echo "# Exact versions lotterybook was tested with (Python 3.11, CPU). Regenerate with: make lock"; \
	  echo "# torch is pinned to 2.13.0: on this project's CPU machines pip takes the local CPU build."; \
	  $(BIN)/python -m pip freeze | grep -v -iE '^-e |^lotterylib' | sed 's/^torch==\([0-9.]*\)+cpu/torch==\1/'; \
	} > requirements/lock.txt

clean:
	rm -rf _build .pytest_cache
