# Clonewatch: every target creates the virtual environment it needs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Written by scripts/compile.py once the mypyc build of detectors/ matches its sources.
NATIVE := detectors/native.json

.PHONY: venv compile demo test test-unit test-integration lint typecheck bench services-up services-down services-status clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The engine's per-event Python compiled with mypyc (CLONEWATCH_COMPILE=0: keep the pure Python).
$(NATIVE): $(STAMP) $(wildcard detectors/*.py detectors/*/*.py) scripts/compile.py
	$(BIN)/python scripts/compile.py

compile: $(NATIVE)

demo: $(NATIVE)
	$(BIN)/clonewatch demo --out clonewatch-out

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

test-unit: $(NATIVE)
	$(BIN)/pytest -m "not integration" -q

# Starts the real services it needs (scripts/services.sh), runs every test, stops what it started.
test: $(NATIVE)
	bash scripts/test.sh

# Starts Kafka for the stream benchmark if none answers, and stops what it started.
bench: $(NATIVE)
	bash scripts/bench.sh

services-up:
	bash scripts/services.sh up

services-down:
	bash scripts/services.sh down

services-status:
	bash scripts/services.sh status

clean:
	rm -rf $(VENV) clonewatch-out .mypy_cache .ruff_cache .pytest_cache build $(NATIVE)
	find detectors -name "*.so" -delete
