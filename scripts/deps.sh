#!/usr/bin/env bash
# Installs the Debian packages tapproof's demo and tests use, when missing:
# PostgreSQL 15 (Trillian's storage), promtool (Prometheus rule checks),
# xmllint (CAP 1.2 schema checks), Chromium and npm (the status pages'
# browser and accessibility tests). Go-built components (InfluxDB 1.8.10,
# Trillian v1.8.0) are built and cached by internal/localstack on first use.
set -euo pipefail

#
# Usage: deps.sh [demo|test]. The demo needs PostgreSQL alone; the tests
# (the default) need the rest too: Chromium and npm for the browser tests
# (axe-core is fetched from npm), promtool and xmllint.
what=${1:-test}
need=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql)
if [ "$what" = test ]; then
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v npm >/dev/null 2>&1 || need+=(npm)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: please install: ${need[*]} (apt-get install -y ${need[*]})" >&2
  exit 1
fi
echo "deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The prometheus package starts a server we do not want.
if [[ " ${need[*]} " == *" prometheus "* ]]; then
  (systemctl stop prometheus prometheus-node-exporter 2>/dev/null || service prometheus stop 2>/dev/null || true) >/dev/null
fi
