# Sourced by scripts/test.sh and scripts/bench.sh: a lease on the test services, held by this
# shell until it exits (scripts/services.sh acquire / release). The sourcing script keeps the
# first failing step's exit code in STATUS; the shell exits with it unless it fails itself.
STATUS=${STATUS:-0}

lease_release() {
  local rc=$?
  [[ $rc -ne 0 || $STATUS -eq 0 ]] || rc=$STATUS
  trap - EXIT INT TERM
  bash scripts/services.sh release "$$" || echo "$(basename "$0"): stopping the services failed" >&2
  exit "$rc"
}

hold_lease() {  # hold_lease [SERVICE...]: start them (or reuse them) until this shell exits
  trap lease_release EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  bash scripts/services.sh acquire "$$" "$@"
}
