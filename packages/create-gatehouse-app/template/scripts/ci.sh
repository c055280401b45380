#!/bin/sh
# What CI runs on every change: the security plan against the platform's admission policy (exit 0
# approve, 3 review, 1 deny), then the bundle for secrets and direct CRM calls (non-zero on a finding).
set -e
npx gatehouse policy check manifest.json
npx gatehouse scan .
