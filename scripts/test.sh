#!/usr/bin/env bash
# Runs the whole suite: system dependencies (scripts/deps.d), ruff, mypy and the unit tests, then
# the integration tests against the real Kafka, Elasticsearch and OpenSearch (scripts/services.sh).
#
# Servers that already run (from `make services-up`, another test run, or anything answering on
# the ports) are reused and left running; the ones this run starts are stopped when it ends,
# whatever the outcome (a lease: parallel runs share them, the last one out stops them).
# pytest's exit code 5 ("no tests collected") counts as success.
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

echo "== ruff"
"$BIN/ruff" check .
echo "== mypy"
"$BIN/mypy"
echo "== unit tests"
pytest_ok -q -m "not integration"

echo "== services"
HOLDER=$$
release() {
  local rc=$?
  trap - EXIT INT TERM
  bash scripts/services.sh release "$HOLDER" || echo "test.sh: stopping the services failed" >&2
  exit "$rc"
}
trap release EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bash scripts/services.sh acquire "$HOLDER"
bash scripts/services.sh status

echo "== integration tests"
pytest_ok -q -m integration
