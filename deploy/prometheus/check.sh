#!/usr/bin/env bash
# Checks the Prometheus configuration and alerting rules with promtool and
# runs the rules' unit tests. promtool comes with Debian's prometheus package
# (apt-get install prometheus; scripts/deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v promtool >/dev/null 2>&1; then
  echo "check.sh: promtool not found; install Debian's prometheus package" >&2
  exit 1
fi
promtool check config prometheus.yml
promtool check rules alerts.yml
promtool test rules alerts_test.yml
