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
// A suite whose setup failed has no failed test of its own (its tests are skipped): it counts as one failure.
const failures = (r) =>
  r.numFailedTests + r.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed")).length;
const read = (file) => JSON.parse(fs.readFileSync(file, "utf8"));
let passed = 0;
let failed = 0;
try { const r = read(".ci/results.json"); passed += r.numPassedTests; failed += failures(r); } catch { failed += 1; }
try { const k = read(".ci/results-kubernetes.json"); passed += k.numPassedTests; failed += failures(k); } catch { failed += Number(process.env.KUBE_STATUS); }
console.log(`${passed} passed, ${failed} failed`);
'
exit $status
