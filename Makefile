# Threadgate: `make run` starts the gateway (the local demo without a token), `make test` checks everything.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test fuzz lint typecheck pytest bench bench-gateway bench-instructions clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/threadgate run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

# The state machines with twenty times the examples of `make test` (docs/testing.md).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -p no:cacheprovider --timeout=0 \
		tests/actors/test_supervisor_machine.py tests/actors/thread/test_machine.py

bench: $(STAMP)
	$(BIN)/python bench/bench_actors.py

bench-gateway: $(STAMP)
	$(BIN)/python bench/bench_gateway.py

bench-instructions: $(STAMP)
	$(BIN)/python bench/bench_instructions.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
