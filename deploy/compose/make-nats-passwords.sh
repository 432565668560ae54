#!/bin/sh
# Writes deploy/compose/.env with a random NATS password per Switchyard identity (one user per
# service, and `tools` for read-only subscribers): Compose reads .env for the nats container
# (the generated authorization.conf takes them from its environment) and for each service's
# NATS_PASSWORD. An existing .env is kept. The identities are those of
# packages/shared/src/bus-permissions.ts (a test checks this list against it).
set -eu
cd "$(dirname "$0")"
if [ -e .env ] && grep -q '^NATS_PASSWORD_' .env; then
  echo "deploy/compose/.env already holds NATS passwords; keeping them"
  exit 0
fi
umask 077
for identity in CONTROL_PLANE STATS_SINK EVENT_STREAMER AUTOSCALER ACTIVATOR TOOLS; do
  printf 'NATS_PASSWORD_%s=%s\n' "$identity" "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
done >>.env
echo "wrote NATS passwords to deploy/compose/.env (mode 0600); user \"tools\" may subscribe to switchyard.> and publish nothing"
