#!/usr/bin/env bash
# Outside check of the gRPC API: a Python client (grpcio, stubs generated from proto/ with
# grpc_tools.protoc) against a running `chat-sys serve`. Exercises every rpc of auth.v1,
# connection.v1 and message.v1 with real tokens, the delivery of a gRPC-created message to a
# STOMP subscriber, grpc.health.v1 and server reflection (the service list must be exactly the
# three services, health and reflection). See tests/external/grpc/check.py.
#
# Exit 0 = passed, 77 = skipped (no chat-sys binary), else failed.
# Environment: GRPC_VENV (default /var/cache/chat-sys-venv), GRPC_BIN (a prebuilt chat-sys
# instead of `cargo build -p chat-sys`).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
common_init grpc.sh

VENV="${GRPC_VENV:-/var/cache/chat-sys-venv}"
PIP_PINS=(grpcio==1.85.1 grpcio-tools==1.85.1 grpcio-reflection==1.85.1 websocket-client==1.9.2)
SERVICE_ID=grpc-check-gateway
SERVICE_SECRET=grpc-check-secret-1

# ensure_venv: the venv with exactly PIP_PINS (created when missing, reinstalled on a mismatch).
ensure_venv() {
	if [[ -x $VENV/bin/python ]] && "$VENV/bin/python" - "${PIP_PINS[@]}" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
sys.exit(0 if all(version(p.split("==")[0]) == p.split("==")[1] for p in sys.argv[1:]) else 1)
PY
		return 0
	fi
	if [[ ! -x $VENV/bin/python ]]; then
		log "creating $VENV"
		create_venv "$VENV"
	fi
	venv_pip_install "$VENV" "${PIP_PINS[@]}"
}

# ---- build ----
build_chat_sys "${GRPC_BIN:-}"
[[ -x $BIN ]] || skip "no chat-sys binary"
serve_has_flag --grpc-port || {
	log "chat-sys serve has no --grpc-port"
	exit 1
}

ensure_venv

make_workdir

# ---- Python stubs from proto/ ----
mkdir -p "$WORK/stubs"
"$VENV/bin/python" -m grpc_tools.protoc -I proto --python_out="$WORK/stubs" --grpc_python_out="$WORK/stubs" \
	auth/v1/auth.proto connection/v1/connection.proto message/v1/message.proto

# ---- server ----
HTTP_PORT="$(free_port)"
WS_PORT="$(free_port)"
GRPC_PORT="$(free_port)"
"$BIN" client create --data-dir "$WORK/data" --id "$SERVICE_ID" --secret "$SERVICE_SECRET" </dev/null >/dev/null
start_server "$HTTP_PORT" --ws-port "$WS_PORT" --grpc-port "$GRPC_PORT"

# ---- users, a conversation, a service credential (REST) ----
tokens=()
for name in grpc-alice grpc-bob grpc-carol; do
	user="$(register_and_login "$name" "correct horse battery")"
	tokens+=("${user#* }")
done
code="$(curl -sS -o "$WORK/me.json" -w '%{http_code}' --max-time 30 -H "Authorization: Bearer ${tokens[1]}" "$BASE/api/v1/users/me")"
[[ $code == 2?? ]] || {
	log "GET /api/v1/users/me: HTTP $code: $(head -c 300 "$WORK/me.json")"
	exit 1
}
bob_id="$(json_get "$WORK/me.json" 'd.get("data", d)["userId"]')"
code="$(post_json /api/v1/conversations "{\"type\":\"CHANNEL\",\"name\":\"grpc-check\",\"memberIds\":[\"$bob_id\"]}" "$WORK/conv.json" "${tokens[0]}")"
[[ $code == 2?? ]] || {
	log "create conversation: HTTP $code: $(head -c 300 "$WORK/conv.json")"
	exit 1
}
conv_id="$(json_get "$WORK/conv.json" 'd.get("data", d)["conversationId"]')"
code="$(curl -sS -o "$WORK/token.json" -w '%{http_code}' --max-time 30 -X POST \
	-d grant_type=client_credentials -d "client_id=$SERVICE_ID" -d "client_secret=$SERVICE_SECRET" "$BASE/oauth2/token")"
[[ $code == 2?? ]] || {
	log "client_credentials: HTTP $code: $(head -c 300 "$WORK/token.json")"
	exit 1
}
service_token="$(json_get "$WORK/token.json" 'd["access_token"]')"

# ---- the client ----
rc=0
PYTHONPATH="$WORK/stubs" GRPC_ADDR="127.0.0.1:$GRPC_PORT" WS_URL="ws://127.0.0.1:$WS_PORT/ws/websocket" \
	TOKEN_A="${tokens[0]}" TOKEN_B="${tokens[1]}" TOKEN_C="${tokens[2]}" SERVICE_TOKEN="$service_token" \
	CONV_ID="$conv_id" timeout --kill-after=10 180 "$VENV/bin/python" tests/external/grpc/check.py || rc=$?
exit "$rc"
