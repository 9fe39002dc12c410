#!/usr/bin/env bash
# Installs Debian's rsyslog when rsyslogd is missing (idempotent).
# The integration tests of the SIEM sink start their own rsyslogd.
exec bash "$(dirname "$0")/../apt-ensure.sh" rsyslog rsyslogd
