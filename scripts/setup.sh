#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine with Node 20:
# Debian packages (a real browser, brokers, a proxy, an independent WebSocket
# implementation) and the npm dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(chromium nginx-light mosquitto rabbitmq-server python3-websockets openssl ca-certificates procps)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The tests start their own nginx and mosquitto on free ports; the packaged
# services are not needed (and must not hold ports).
if command -v systemctl >/dev/null 2>&1; then systemctl stop nginx mosquitto >/dev/null 2>&1 || true; fi
pkill -x nginx >/dev/null 2>&1 || true
pkill -x mosquitto >/dev/null 2>&1 || true

npm ci --no-audit --no-fund
