#!/usr/bin/env bash
# The main job: sets up a fresh machine and runs the whole stack locally (syctl up).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec node packages/cli/dist/src/main.js up "$@"
