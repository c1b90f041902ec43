#!/usr/bin/env bash
# SockJS end-to-end check: sockjs-client (websocket, xhr-streaming, xhr-polling, eventsource)
# carrying STOMP with @stomp/stompjs, against a real `chat-sys serve`.
#
# Steps: `npm ci` in tests/sockjs when needed, build chat-sys, start `chat-sys serve` on free
# ports with a temporary data directory (1 s STOMP heart-beats, 4 KiB SockJS streaming limit
# so streaming transports reconnect during the test), register and log in two users and
# create their DM over REST, then `node --test tests/sockjs/`.
#
# Exit status: 0 passed, 77 skipped (node/npm absent), anything else failed.
# Environment: CHAT_SYS_BIN (use this binary instead of building), CARGO_TARGET_DIR
# (default /var/cache/chat-sys-target), SOCKJS_KEEP=1 (keep the temporary directory).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
common_init sockjs.sh

require_node
ensure_npm_deps tests/sockjs
build_chat_sys "${CHAT_SYS_BIN:-}"

make_workdir
[[ -z ${SOCKJS_KEEP:-} ]] || KEEP_WORK=1

http_port="$(free_port)"
ws_port="$(free_port)"
while [[ $ws_port == "$http_port" ]]; do ws_port="$(free_port)"; done

SERVER_CWD="$WORK" CHAT_GATEWAY__HEARTBEAT_SEND_MS=1000 CHAT_GATEWAY__HEARTBEAT_RECEIVE_MS=1000 \
	CHAT_GATEWAY__SOCKJS__STREAMING_LIMIT_BYTES=4096 RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 \
	start_server "$http_port" --ws-port "$ws_port"

suffix="$(python3 -c 'import secrets; print(secrets.token_hex(4))')"
password="correct horse battery"
alice="$(register_and_login "sj_alice_$suffix" "$password")"
bob="$(register_and_login "sj_bob_$suffix" "$password")"
read -r alice_id alice_token <<<"$alice"
read -r bob_id bob_token <<<"$bob"
code="$(post_json /api/v1/conversations "{\"type\":\"DM\",\"memberIds\":[\"$bob_id\"]}" "$WORK/conv.json" "$alice_token")"
[[ $code == 2?? ]] || {
	log "create DM: HTTP $code: $(head -c 300 "$WORK/conv.json")"
	exit 1
}
conversation_id="$(json_get "$WORK/conv.json" 'd.get("data", d)["conversationId"]')"

log "node --test tests/sockjs/"
rc=0
SOCKJS_URL="http://127.0.0.1:$ws_port/ws" ALICE_ID="$alice_id" ALICE_TOKEN="$alice_token" \
	BOB_ID="$bob_id" BOB_TOKEN="$bob_token" CONVERSATION_ID="$conversation_id" \
	node --test --test-timeout=120000 tests/sockjs/ || rc=$?
exit "$rc"
