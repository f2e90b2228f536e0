#!/usr/bin/env bash
# Installs the system packages the full test suite starts for real (see README "Testing").
# Idempotent: packages already present are left alone. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=()
need() { # need <command> <debian-package>
  command -v "$1" >/dev/null 2>&1 || packages+=("$2")
}
need openssl openssl
need nats-server nats-server
need promtool prometheus
need chromium chromium
# PostgreSQL's server binaries live under /usr/lib/postgresql/<version>/bin, off PATH.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || packages+=(postgresql)
need mosquitto mosquitto
# Home Assistant's value templates are Jinja2: the MQTT tests render them with Debian's python3-jinja2,
# under Debian's own interpreter (a python3 earlier on PATH, such as pyenv's, would not see it).
/usr/bin/python3 -c 'import jinja2' >/dev/null 2>&1 || packages+=(python3-jinja2)
need systemd-analyze systemd

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "install-test-deps: Node.js >= 20 is required (found $(node --version))" >&2
  exit 1
fi

if [ ${#packages[@]} -eq 0 ]; then
  echo "install-test-deps: system packages present"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: need root to install: ${packages[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-test-deps: installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
# The tests start nats-server, prometheus, postgres and mosquitto themselves on free loopback ports; keep the packages from
# starting system-wide daemons during installation (the standard policy-rc.d switch).
policy=/usr/sbin/policy-rc.d
created_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  created_policy=1
fi
cleanup() { if [ -n "$created_policy" ]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${packages[@]}"
