#!/usr/bin/env bash
# Installs Debian's chromium when chromium is missing (idempotent).
# tests/integration/test_report_browser.py opens the HTML report in headless Chromium.
exec bash "$(dirname "$0")/../apt-ensure.sh" chromium chromium
