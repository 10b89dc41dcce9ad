#!/usr/bin/env bash
# Runs the official Engine.IO and Socket.IO conformance suites against
# `cargo run --example conformance`. The suites are not part of this repository:
# pass the directory holding engine.io-protocol/test-suite and
# socket.io-protocol/test-suite (copies of the public repositories
# socketio/engine.io-protocol and socketio/socket.io-protocol).
#
# The suites' test client pins ws 8.5.0, which delivers several frames that arrive in
# one TCP read at once and misses the second; as the issue prescribes, ws is raised to
# a release >= 8.23 (inside the declared ^8.5.0) and the client is given
# allowSynchronousEvents: false, as a browser behaves. No assertion is changed.
set -euo pipefail
suites="${1:?usage: scripts/conformance.sh DIR-WITH-THE-SUITES}"
root="$(cd "$(dirname "$0")/.." && pwd)"

cargo build --release --example conformance --manifest-path "$root/Cargo.toml"
"${CARGO_TARGET_DIR:-$root/target}/release/examples/conformance" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:3000/engine.io/?EIO=4&transport=polling" >/dev/null && break
  sleep 0.1
done

status=0
for suite in engine.io-protocol socket.io-protocol; do
  dir="$suites/$suite/test-suite"
  (
    cd "$dir"
    [ -d node_modules ] || npm install --no-audit --no-fund --silent
    npm install --no-audit --no-fund --silent --no-save "ws@^8.23.0"
    if ! grep -q allowSynchronousEvents node-imports.js; then
      cat >> node-imports.js <<'JS'

// Behave as a browser does: one message event per task (see scripts/conformance.sh).
globalThis.WebSocket = class extends WebSocket {
  constructor(url, protocols, options) {
    super(url, protocols, { allowSynchronousEvents: false, ...options });
  }
};
JS
    fi
    echo "::: $suite"
    npx mocha test-suite.js
  ) || status=1
done
exit $status
