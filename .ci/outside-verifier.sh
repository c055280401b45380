#!/usr/bin/env bash
# Runs an outside audit-log verifier (usage: VERIFIER BASE_URL AUDITOR_TOKEN VERIFIER_KEY) against a
# throw-away demo with some traffic. Usage: .ci/outside-verifier.sh PATH/TO/tlog-check.mjs
set -euo pipefail
cd "$(dirname "$0")/.."
verifier=$(realpath "$1")
export GATEHOUSE_DATA_DIR
GATEHOUSE_DATA_DIR=$(mktemp -d)
port=18$((RANDOM % 900 + 100))
node bin/gatehouse.js serve --demo --port "$port" --log-format json >/dev/null 2>&1 &
server=$!
trap 'kill "$server"; wait "$server" || true; rm -rf "$GATEHOUSE_DATA_DIR"' EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 1; done
alice=$(node bin/gatehouse.js dev token --user alice --app call-notes --scope read:contact.basic)
for _ in 1 2 3; do curl -s "http://127.0.0.1:$port/crm/v1/contacts?limit=5" -H "authorization: Bearer $alice" >/dev/null; done
carol=$(node bin/gatehouse.js dev token --user carol --app console --scope audit:read)
node "$verifier" "http://127.0.0.1:$port" "$carol" "$(node bin/gatehouse.js audit public-key)"
