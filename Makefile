# Clonewatch: every target creates the virtual environment it needs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-unit test-integration lint typecheck bench services-up services-down services-status clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,rocksdb]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/clonewatch demo --out clonewatch-out

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test-unit: $(STAMP)
	$(BIN)/pytest -m "not integration" -q

# Starts the real services it needs (scripts/services.sh), runs every test, stops what it started.
test: $(STAMP)
	bash scripts/test.sh

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

services-up:
	bash scripts/services.sh up

services-down:
	bash scripts/services.sh down

services-status:
	bash scripts/services.sh status

clean:
	rm -rf $(VENV) clonewatch-out .mypy_cache .ruff_cache .pytest_cache
