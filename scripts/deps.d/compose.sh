#!/usr/bin/env bash
# Installs Debian's docker-compose when it is missing; idempotent.
# tests/unit/test_compose.py validates docker-compose.yml with `docker-compose config`
# (there is no Docker engine on the test machines; `config` needs none).
set -euo pipefail

if command -v docker-compose >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "deps.d/compose.sh: docker-compose is missing and neither root nor sudo is available" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
command -v docker-compose >/dev/null 2>&1
