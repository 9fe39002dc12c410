#!/usr/bin/env bash
# Installs Debian's chromium when /usr/bin/chromium is missing; idempotent.
# tests/integration/test_report_browser.py opens the HTML report in headless Chromium.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "deps.d/chromium.sh: chromium is missing and neither root nor sudo is available" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
[ -x /usr/bin/chromium ]
