#!/usr/bin/env bash
# usage: scripts/apt-ensure.sh PACKAGE EXECUTABLE
# Installs Debian's PACKAGE when EXECUTABLE is found neither on PATH nor in /usr/sbin or
# /usr/bin; idempotent. `apt-get update` runs at most once per hour across calls.
set -euo pipefail
pkg=$1
exe=$2

found() { command -v "$exe" >/dev/null 2>&1 || [ -x "/usr/sbin/$exe" ] || [ -x "/usr/bin/$exe" ]; }
found && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "apt-ensure: $exe is missing and neither root nor sudo is available to install $pkg" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
stamp="${TMPDIR:-/tmp}/clonewatch-apt-updated"
if [ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ]; then
    $SUDO apt-get update -qq
    touch "$stamp"
fi
# Installing does not start a system-wide daemon here (policy-rc.d is honoured by invoke-rc.d).
$SUDO apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
found || { echo "apt-ensure: $pkg installed but $exe still not found" >&2; exit 1; }
