# Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

# In CI (and in development) the public data sets lie in ../shared/datasets;
# point the cache there so that nothing is downloaded.
SHARED_DATA := $(abspath ../shared/datasets)
ifneq ($(wildcard $(SHARED_DATA)),)
export RECAE_DATA_DIR ?= $(SHARED_DATA)
endif

.PHONY: install run test bench lint clean

install: $(VENV)/.installed

# torch is pinned here (not in pyproject) so that pip takes the CPU build that
# lies on disk instead of downloading a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

run: install
	$(BIN)/recae benchmark

test: install
	$(BIN)/pytest -q

bench: install
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check recae tests benchmarks
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
