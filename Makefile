# Threadgate: `make run` starts the gateway (the local demo without a token), `make test` checks everything.
# The venv is installed from the lock files (`make lock` updates them; docs/operations.md, Installing).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# uv, pinned, is installed with pip into its own small venv: a fresh machine has only Python and pip.
UV_VERSION := 0.13.9
UV_HOME    := .uv
UV         := $(UV_HOME)/bin/uv
export UV_PYTHON_DOWNLOADS := never
# requirements-test.lock: the venv of `make` (runtime, test tools and the benchmarks' peers);
# requirements.lock: the image.
LOCKS   := requirements-test.lock requirements.lock
COMPILE := $(UV) pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" --quiet

.PHONY: run test fuzz lint typecheck pytest bench bench-gateway bench-instructions bench-replicas \
	bench-scale clean lock lock-upgrade lock-check

$(UV):
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/python -m pip install --quiet uv==$(UV_VERSION)

$(BIN)/python: | $(UV)
	$(UV) venv --quiet --python $(PYTHON) $(VENV)

# Fails at once, with one line, when pyproject.toml's dependencies changed without `make lock`.
lock-check:
	@$(PYTHON) .ci/lock_inputs.py check $(LOCKS)

$(STAMP): pyproject.toml $(LOCKS) | $(BIN)/python
	@$(PYTHON) .ci/lock_inputs.py check $(LOCKS)
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes requirements-test.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

# Re-resolve after a change to pyproject.toml's dependencies; pins that still fit are kept.
lock: | $(UV)
	$(COMPILE) $(LOCK_FLAGS) --extra test --extra bench --output-file requirements-test.lock
	$(COMPILE) --constraint requirements-test.lock --output-file requirements.lock
	$(PYTHON) .ci/lock_inputs.py stamp $(LOCKS)

# Every pin to the newest release the ranges in pyproject.toml admit.
lock-upgrade:
	$(MAKE) lock LOCK_FLAGS=--upgrade

run: $(STAMP)
	$(BIN)/threadgate run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy .ci/lock_inputs.py

# Four worker processes (pytest-xdist): most tests wait on real sockets and clocks, so four
# cut the time even on two cores (docs/testing.md). The tests that start whole gateway
# processes share one worker (their xdist_group), one at a time.
pytest: $(STAMP)
	$(BIN)/pytest -n 4 --dist loadgroup

test: lint typecheck pytest

# The state machines with twenty times the examples of `make test` (docs/testing.md).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -n 2 -p no:cacheprovider --timeout=0 \
		tests/actors/test_supervisor_machine.py tests/actors/thread/test_machine.py

bench: $(STAMP)
	$(BIN)/python bench/bench_actors.py

bench-gateway: $(STAMP)
	$(BIN)/python bench/bench_gateway.py

bench-instructions: $(STAMP)
	$(BIN)/python bench/bench_instructions.py

# Replicas on one throwaway PostgreSQL against the single SQLite process, and the failover
# time (needs PostgreSQL installed: `apt-get install postgresql`; docs/performance.md).
bench-replicas: $(STAMP)
	$(BIN)/python bench/bench_replicas.py

# 10,000 threads active at once, 100,000 known, a crash's replay of 10,000 (about half an hour
# on the 2-core machine); `make bench-scale SCALE=0.1` divides every count by ten.
SCALE ?= 1
bench-scale: $(STAMP)
	$(BIN)/python bench/bench_scale.py --scale $(SCALE)

clean:
	rm -rf $(VENV) $(UV_HOME) .mypy_cache .pytest_cache .ruff_cache
