#!/usr/bin/env bash
# Installs Debian's docker-compose when docker-compose is missing (idempotent).
# tests/unit/test_compose.py validates docker-compose.yml with `docker-compose config` (no engine needed).
exec bash "$(dirname "$0")/../apt-ensure.sh" docker-compose docker-compose
