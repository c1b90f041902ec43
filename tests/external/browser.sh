#!/usr/bin/env bash
# Browser check: the web client served by the gateway, driven in Debian's chromium by
# playwright-core (tests/browser, node --test; Playwright never downloads a browser). Each
# test file runs its own `chat-sys serve` on free ports with a temporary data directory
# (tests/browser/lib/harness.js), so that one test can stop and start it on the same ports:
#   chat.test.js    two users in two browser contexts chat (edit, reaction, thread reply,
#                   pin, delete, typing, attachment, unread counts, search); the pages survive
#                   a server restart and show the messages sent meanwhile
#                   (the replay after the resume is checked), and the history scrolls back
#                   page by page
#   sockjs.test.js  the iframe-based SockJS transports (htmlfile, jsonp-polling,
#                   iframe-htmlfile) with WebSocket disabled on the server and in the pages
# Screenshots of the windows are saved in CHAT_BROWSER_ARTIFACTS (default
# target/browser-artifacts/) and their paths printed.
#
# Exit 0 = passed, 77 = skipped (node/npm absent, or chromium absent and not installable:
# scripts/chromium.sh installs Debian's package as root), else failed.
#
# Environment:
#   CHAT_SYS_BIN            use this server binary instead of `cargo build -p chat-sys`
#   CHROMIUM_PATH           use this browser instead of scripts/chromium.sh's
#   CHAT_BROWSER_ARTIFACTS  screenshot directory
#   CARGO_TARGET_DIR        default /var/cache/chat-sys-target (shared with .ci/run)
#   BROWSER_TIMEOUT         hard limit for the node run in seconds (default 600)
#   BROWSER_ARGS            extra `node --test` arguments, split on spaces
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
common_init browser.sh
BROWSER_DIR=tests/browser

require_node
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if ((node_major < 20)); then
	log "node $(node --version) is too old: the suite needs Node.js >= 20"
	exit 1
fi

if [[ -z ${CHROMIUM_PATH:-} ]]; then
	CHROMIUM_PATH="$(bash scripts/chromium.sh)" || skip "no chromium, and scripts/chromium.sh could not install it"
fi
export CHROMIUM_PATH
"$CHROMIUM_PATH" --version >&2 || {
	log "$CHROMIUM_PATH does not run"
	exit 1
}

# playwright-core has no browser download step; the variable guards against one anyway.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 ensure_npm_deps "$BROWSER_DIR"

build_chat_sys "${CHAT_SYS_BIN:-}"
export CHAT_SYS_BIN="$BIN"
[[ -x $CHAT_SYS_BIN ]] || {
	log "no executable chat-sys binary at $CHAT_SYS_BIN"
	exit 1
}

export CHAT_BROWSER_ARTIFACTS="${CHAT_BROWSER_ARTIFACTS:-$PWD/target/browser-artifacts}"
mkdir -p "$CHAT_BROWSER_ARTIFACTS"
read -r -a extra_args <<<"${BROWSER_ARGS:-}"
log "node --test $BROWSER_DIR/ (server: $CHAT_SYS_BIN, browser: $CHROMIUM_PATH)"
rc=0
timeout --kill-after=30 "${BROWSER_TIMEOUT:-600}" \
	node --test --test-concurrency=1 --test-reporter=spec "${extra_args[@]}" "$BROWSER_DIR/" </dev/null || rc=$?
if ((rc == 124)); then
	log "timed out after ${BROWSER_TIMEOUT:-600} s"
fi
log "screenshots: $(ls "$CHAT_BROWSER_ARTIFACTS"/*.png 2>/dev/null | tr '\n' ' ')"
exit "$rc"
