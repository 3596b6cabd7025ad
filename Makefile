# Two entry points for a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv warmup demo test unit bench services-up services-down clean

$(BIN)/logml: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps logparser3==1.0.4
	touch $@

venv: $(BIN)/logml

# numba compiles the kernels once per machine (and caches them on disk): do it up front,
# with a message, so the demo and the tests start warm and never compile side by side.
warmup: venv
	$(BIN)/python -m logml.warmup

demo: warmup
	$(BIN)/logml demo

# The whole suite: unit tests, accuracy, property tests and integration tests against real
# services (provisioned by tests/services/up), then the services are stopped again.
test: warmup
	$(BIN)/python -m pytest tests; rc=$$?; tests/services/down >/dev/null 2>&1; exit $$rc

unit: warmup
	$(BIN)/python -m pytest tests -m "not integration"

bench: warmup
	$(BIN)/python -m pytest benchmarks --benchmark-only --benchmark-json=benchmarks/results/latest.json

services-up:
	tests/services/up

services-down:
	tests/services/down

clean:
	rm -rf $(VENV) logml-demo .pytest_cache .benchmarks
