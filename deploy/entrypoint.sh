#!/bin/sh
# Starts one Switchyard process in the container: the first argument names it.
set -eu

# The image keeps this script in /app/deploy; resolving from here also runs it from a checkout.
app="$(cd "$(dirname "$0")/.." && pwd)"

usage() {
  cat <<USAGE
usage: <image> COMMAND [ARGS...]

commands:
  control-plane    xDS server (:18000), management API (:8080), admin (:9401)
  stats-sink       MetricsService and LRS (:18001), admin (:9402)
  event-streamer   HDS, Envoy events, Watch API (:18002), admin (:9403)
  autoscaler       scaling decisions and instance providers, admin (:9404)
  activator        holds requests of revisions at zero instances (:8012), admin (:9405)
  syctl            the command-line client (syctl --help)
  demo             a small HTTP service for the demo tenants (PORT, REVISION)
  demo-setup       registers the demo tenant and service through the management API
  probe URL        exits 0 when URL answers 2xx (container health checks)

Configuration is read from environment variables; see docs/deploy.md.
USAGE
}

command="${1:-help}"
[ "$#" -gt 0 ] && shift

case "$command" in
  control-plane | stats-sink | event-streamer | autoscaler | activator)
    exec node "$app/services/$command/dist/src/main.js" "$@"
    ;;
  syctl)
    exec node "$app/packages/cli/dist/src/main.js" "$@"
    ;;
  demo)
    exec node "$app/deploy/demo/server.mjs" "$@"
    ;;
  demo-setup)
    exec node "$app/deploy/demo/setup.mjs" "$@"
    ;;
  probe)
    exec node "$app/deploy/probe.mjs" "$@"
    ;;
  help | -h | --help)
    usage
    ;;
  *)
    echo "unknown command: $command" >&2
    usage >&2
    exit 64
    ;;
esac
