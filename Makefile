# Every target sets up what it needs: a fresh clone needs only python3 (3.11+) and make
# (plus python3.13, the functions' runtime, for package, lock and test-runtime).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The one pin of the deployed dependencies: sam build installs it into the layer, the test venvs use it as
# constraints, so what is tested is what is deployed (README: Deploy > Artifacts).
LOCK   := requirements/lambda/requirements.txt
# The functions' runtime for test-runtime and lock (empty if there is none); looked up only when used.
PYTHON313 = $(shell tests/infrastructure/python313.sh)
VENV313   := .venv-py313

.PHONY: venv test test-runtime lint demo bench package lock docs clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n auto

# The test suite on python3.13, the interpreter the functions run on, in its own venv from the same lock.
# Skipped (with a message, exit 0) where no python3.13 exists.
test-runtime:
	@if [ -z "$(PYTHON313)" ]; then \
		echo "make test-runtime: skipped, no python3.13 found (on PATH or in pyenv versions)"; \
	else \
		$(MAKE) --no-print-directory VENV=$(VENV313) PYTHON=$(PYTHON313) test; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/python -m flexrestore.local.demo

# Prints the poll loop's and a restore's figures, then measures cold starts, the warm intake, transitions, calls
# and (with python3.13, via make package) the artifacts' sizes into bench/results.json, which README quotes.
bench: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_poll_loop.py
	$(BIN)/python tests/benchmarks/bench_restore.py
	$(BIN)/python tests/benchmarks/bench_results.py
	$(BIN)/python tests/benchmarks/bench_runs.py

docs: $(STAMP)
	$(BIN)/python -m flexrestore.contracts.schemas docs
	$(BIN)/python -m flexrestore.triggers.openapi docs/openapi.json

package:
	@./tests/infrastructure/package.sh

# Regenerate the lock from pyproject.toml's ranges (the newest versions they and the test tools allow).
lock:
	@if [ -z "$(PYTHON313)" ]; then \
		echo "make lock: no python3.13 found (on PATH or in pyenv versions); the lock is resolved for it" >&2; \
		exit 1; \
	fi
	$(PYTHON313) tests/infrastructure/lock.py

clean:
	rm -rf $(VENV) $(VENV313) .aws-sam .pytest_cache .mypy_cache .ruff_cache
