#!/usr/bin/env bash
# Runs the whole suite: unit tests, then integration tests against services started here.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
$BIN/ruff check .
$BIN/mypy
$BIN/pytest -q -m "not integration"
