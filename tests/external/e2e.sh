#!/usr/bin/env bash
# End-to-end check: the Node.js suite in tests/e2e/ (node --test, @stomp/stompjs + ws)
# against a real `chat-sys serve` (REST + STOMP over WebSocket), one server per test file on
# free ports with a temporary data directory.
#
# Exit 0 = passed, 77 = skipped (only when node/npm are absent), else failed.
#
# Environment:
#   CHAT_SYS_BIN      use this server binary instead of `cargo build -p chat-sys`
#   CARGO_TARGET_DIR  default /var/cache/chat-sys-target (shared with .ci/run)
#   E2E_TIMEOUT       hard limit for the node run in seconds (default 600; it takes ~15 s)
#   E2E_ARGS          extra `node --test` arguments, split on spaces
#                     (e.g. "--test-name-pattern=resume")
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

E2E_DIR=tests/e2e
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/chat-sys-target}"

log() { echo "e2e.sh: $*" >&2; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	log "SKIP: node/npm not installed"
	exit 77
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if ((node_major < 20)); then
	log "node $(node --version) is too old: the suite needs Node.js >= 20"
	exit 1
fi

# ---- dependencies: npm ci when node_modules is missing or was installed from another lock ----
lock_sum="$(sha256sum "$E2E_DIR/package-lock.json" | cut -d' ' -f1)"
stamp="$E2E_DIR/node_modules/.e2e-lock.sha256"
if [[ ! -d $E2E_DIR/node_modules || ! -f $stamp || "$(cat "$stamp")" != "$lock_sum" ]]; then
	log "npm ci in $E2E_DIR"
	(cd "$E2E_DIR" && npm ci --no-audit --no-fund --loglevel=error </dev/null)
	echo "$lock_sum" >"$stamp"
fi

# ---- the server binary, built once for all test files ----
if [[ -z ${CHAT_SYS_BIN:-} ]]; then
	log "cargo build -p chat-sys"
	cargo build -p chat-sys </dev/null
	export CHAT_SYS_BIN="$CARGO_TARGET_DIR/debug/chat-sys"
fi
[[ -x $CHAT_SYS_BIN ]] || {
	log "no executable chat-sys binary at $CHAT_SYS_BIN"
	exit 1
}

# ---- run ----
read -r -a extra_args <<<"${E2E_ARGS:-}"
log "node --test $E2E_DIR/ (server: $CHAT_SYS_BIN)"
rc=0
timeout --kill-after=30 "${E2E_TIMEOUT:-600}" \
	node --test --test-reporter=spec "${extra_args[@]}" "$E2E_DIR/" </dev/null || rc=$?
if ((rc == 124)); then
	log "timed out after ${E2E_TIMEOUT:-600} s"
fi
exit "$rc"
