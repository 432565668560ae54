#!/usr/bin/env bash
# The test command: sets up a fresh machine, lints, runs every test (they start their own
# nats-server on free ports) and ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || exit 1

status=0
pnpm lint || status=1
rm -f .ci/results.json
pnpm test "$@" || status=1
node -e '
const fs = require("fs");
let r = { numPassedTests: 0, numFailedTests: 0 };
try { r = JSON.parse(fs.readFileSync(".ci/results.json", "utf8")); } catch { r.numFailedTests = 1; }
console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed`);
'
exit $status
