#!/usr/bin/env bash
# The test command: sets up a fresh machine, lints, runs every test (they start their own
# nats-server on free ports) and ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || exit 1

status=0
pnpm lint || status=1
rm -f .ci/results.json .ci/results-kubernetes.json
pnpm test "$@" || status=1
# The kubernetes provider against a real kube-apiserver (built once from the Go module proxy, then cached).
kube_status=0
pnpm test:kubernetes || { status=1; kube_status=1; }
KUBE_STATUS=$kube_status node -e '
const fs = require("fs");
let r = { numPassedTests: 0, numFailedTests: 0 };
try { r = JSON.parse(fs.readFileSync(".ci/results.json", "utf8")); } catch { r.numFailedTests = 1; }
try {
  const k = JSON.parse(fs.readFileSync(".ci/results-kubernetes.json", "utf8"));
  r.numPassedTests += k.numPassedTests;
  r.numFailedTests += k.numFailedTests;
} catch { r.numFailedTests += Number(process.env.KUBE_STATUS); }
console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed`);
'
exit $status
