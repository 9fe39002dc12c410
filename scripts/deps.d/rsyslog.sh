#!/usr/bin/env bash
# Installs rsyslog (Debian's package) when rsyslogd is missing; idempotent.
# The integration tests of the SIEM sink start their own rsyslogd on a loopback port.
set -euo pipefail

if command -v rsyslogd >/dev/null 2>&1 || [ -x /usr/sbin/rsyslogd ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "deps.d/rsyslog.sh: rsyslogd is missing and neither root nor sudo is available" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# Install without starting a system-wide daemon (policy-rc.d is honoured by invoke-rc.d).
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends rsyslog >/dev/null
command -v rsyslogd >/dev/null 2>&1 || [ -x /usr/sbin/rsyslogd ]
