# Every target sets up what it needs: a fresh clone needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test lint demo bench package docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/python -m flexrestore.local.demo

bench: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_poll_loop.py
	$(BIN)/python tests/benchmarks/bench_restore.py

docs: $(STAMP)
	$(BIN)/python -m flexrestore.contracts.schemas docs/schemas

package:
	@./tests/infrastructure/package.sh

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
