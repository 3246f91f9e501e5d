#!/usr/bin/env bash
# Installs what the tests need on a Debian machine with Node 20, and nothing else:
#  - Debian packages that are missing (a real browser, brokers, proxies, Redis,
#    promtool, an independent WebSocket implementation);
#  - the npm dependencies (npm ci).
# Safe to run again. It never stops, restarts or kills anything already on the
# machine: the tests start their own nginx, Mosquitto, RabbitMQ, Redis and
# HAProxy on free ports with their own files. Packages it installs are kept
# from starting (now and at boot) as system services — see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(
  chromium            # the browser tests (playwright-core drives /usr/bin/chromium)
  nginx-light         # a reverse proxy in front of the gateway; a benchmark anchor
  haproxy             # the load balancer in front of gateway instances
  mosquitto           # MQTT broker behind the gateway
  rabbitmq-server     # STOMP / Web-STOMP broker behind the gateway (pulls in Erlang)
  redis-server        # shared state between gateway instances
  prometheus          # promtool, to check the /metrics exposition
  python3-websockets  # an independent WebSocket implementation
  openssl ca-certificates procps
)

missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  before=$(mktemp)
  dpkg-query -W -f='${Package}\n' | sort >"$before"

  # Keep the packages' services from being started by their install scripts
  # (policy-rc.d, Debian's own switch for this), unless the machine already has a policy.
  ours_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    ours_policy=1
  fi
  cleanup() { if [ -n "$ours_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi; rm -f "$before"; }
  trap cleanup EXIT

  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

  # On a systemd machine: the units of every package this run installed
  # (dependencies such as Erlang's epmd included) are disabled, so nothing
  # new starts at boot. Packages that were already installed are not touched.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    new=$(dpkg-query -W -f='${Package}\n' | sort | comm -13 "$before" -)
    units=()
    for pkg in $new; do
      while IFS= read -r f; do units+=("$(basename "$f")"); done < <(dpkg -L "$pkg" 2>/dev/null | grep -E '^/(usr/)?lib/systemd/system/[^/]+\.(service|socket|timer)$' || true)
    done
    if [ "${#units[@]}" -gt 0 ]; then
      echo "setup: disabling the installed packages' units at boot: ${units[*]}"
      $SUDO systemctl disable "${units[@]}" >/dev/null 2>&1 || true
    fi
  fi
fi

npm ci --no-audit --no-fund
