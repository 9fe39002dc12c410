#!/usr/bin/env bash
# Runs the whole suite: system dependencies (scripts/deps.d), ruff, mypy, the import contracts,
# the unit tests twice (on the mypyc-compiled engine, then on the pure Python with every
# doctest), then the integration tests against the real Kafka, Elasticsearch and OpenSearch
# (scripts/services.sh).
#
# Servers that already run (from `make services-up`, another test run, or anything answering on
# the ports) are reused and left running; the ones this run starts are stopped when it ends,
# whatever the outcome (a lease: parallel runs share them, the last one out stops them).
# pytest's exit code 5 ("no tests collected") counts as success. A failing step does not stop
# the later ones (CI sees every failure in one run); the exit code is the first failure's.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

pytest_ok() {  # runs pytest; exit status 5 (nothing collected) is not a failure
  local rc=0
  "$BIN/pytest" "$@" || rc=$?
  if [[ $rc -eq 5 ]]; then
    echo "test.sh: pytest $* collected no tests" >&2
    rc=0
  fi
  return "$rc"
}

shopt -s nullglob
for dep in scripts/deps.d/*.sh; do
  echo "== $dep"
  bash "$dep"
done
shopt -u nullglob

STATUS=0
step() {  # step NAME COMMAND...: runs it, remembers the first failure
  echo "== $1"
  shift
  local rc=0
  "$@" || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "test.sh: step failed with exit code $rc: $*" >&2
    [[ $STATUS -ne 0 ]] || STATUS=$rc
  fi
}

pure_unit() {  # the same unit tests on the pure Python, with the compiled modules' doctests
  CLONEWATCH_PURE=1 pytest_ok -q -m "not integration"
}

step ruff "$BIN/ruff" check .
step mypy "$BIN/mypy"
step "import contracts (pyproject [tool.importlinter])" "$BIN/lint-imports" --no-cache
if [[ "${CLONEWATCH_COMPILE:-1}" != 0 ]]; then  # 0: compiling was skipped on purpose
  step "compiled build is current (make compile)" "$BIN/python" -c \
    'import detectors, sys; print("detectors:", detectors.BUILD); sys.exit(detectors.BUILD != "compiled")'
fi
step "unit tests (compiled build)" pytest_ok -q -m "not integration"
step "unit tests (pure Python)" pure_unit

echo "== services"
# shellcheck source=scripts/lease.sh
source scripts/lease.sh
hold_lease
bash scripts/services.sh status

step "integration tests" pytest_ok -q -m integration
exit "$STATUS"
