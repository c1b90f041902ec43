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

. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
common_init e2e.sh
E2E_DIR=tests/e2e

require_node
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if ((node_major < 20)); then
	log "node $(node --version) is too old: the suite needs Node.js >= 20"
	exit 1
fi

ensure_npm_deps "$E2E_DIR"

# ---- the server binary, built once for all test files ----
build_chat_sys "${CHAT_SYS_BIN:-}"
export CHAT_SYS_BIN="$BIN"
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
