#!/usr/bin/env bash
# Installs the Debian packages tapproof uses, when missing.
#
# Usage: scripts/deps.sh [demo|test]
#   demo  what `make demo` runs on: PostgreSQL (Trillian's storage) and
#         OpenSSH's client tools (ssh-agent holds the demo witnesses' keys).
#   test  (the default, `make test`) that, and what only the tests use:
#         promtool (Prometheus rule checks), xmllint (CAP 1.2 schema
#         checks), Chromium (the status pages' browser tests) and Node.js
#         with npm (axe-core, the accessibility checks, comes from npm).
# Go-built components (InfluxDB 1.8.10, Trillian v1.8.0, nats-server,
# mailpit, litewitness) are built and cached by internal/localstack on
# first use.
set -euo pipefail

what=${1:-test}
case "$what" in
demo | test) ;;
*)
  echo "usage: $0 [demo|test]" >&2
  exit 2
  ;;
esac

have() { command -v "$1" >/dev/null 2>&1; }

need=()
# Any PostgreSQL major version will do, as for internal/localstack.
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || have initdb || need+=(postgresql)
{ have ssh-agent && have ssh-add && have ssh-keygen; } || need+=(openssh-client)
if [ "$what" = test ]; then
  have promtool || need+=(prometheus)
  have xmllint || need+=(libxml2-utils)
  { have chromium || have chromium-browser || have google-chrome; } || need+=(chromium)
  have npm || need+=(nodejs npm)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$EUID" -ne 0 ]; then
  echo "deps: please install: ${need[*]} (apt-get install -y ${need[*]})" >&2
  exit 1
fi
if ! have apt-get; then
  echo "deps: no apt-get; please install: ${need[*]}" >&2
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
