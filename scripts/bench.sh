#!/usr/bin/env bash
# Runs every benchmark in benchmarks/ (make bench). The stream benchmark needs Kafka: a broker
# already answering is reused (or the one $CLONEWATCH_BENCH_BOOTSTRAP names); otherwise this run
# starts one (scripts/services.sh, a lease) and stops it at the end, whatever the outcome.
# A failing benchmark does not stop the next; the exit code is the first failure's.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
STATUS=0
# shellcheck source=scripts/lease.sh
source scripts/lease.sh

for b in benchmarks/bench_*.py; do
  if [[ $b == benchmarks/bench_stream.py && -z ${CLONEWATCH_BENCH_BOOTSTRAP:-} ]]; then
    hold_lease kafka
  fi
  echo "== $b"
  rc=0
  "$BIN/python" "$b" || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "bench.sh: $b failed with exit code $rc" >&2
    [[ $STATUS -ne 0 ]] || STATUS=$rc
  fi
done
exit "$STATUS"
