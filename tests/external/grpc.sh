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

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

VENV="${GRPC_VENV:-/var/cache/chat-sys-venv}"
PIP_PINS=(grpcio==1.85.1 grpcio-tools==1.85.1 grpcio-reflection==1.85.1 websocket-client==1.9.2)
SERVICE_ID=grpc-check-gateway
SERVICE_SECRET=grpc-check-secret-1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/chat-sys-target}"

log() { echo "grpc.sh: $*" >&2; }

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
		if ! python3 -m venv "$VENV" 2>/dev/null; then
			rm -rf "$VENV"
			DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv </dev/null >&2
			/usr/bin/python3 -m venv "$VENV"
		fi
	fi
	log "installing ${PIP_PINS[*]} into $VENV"
	"$VENV/bin/pip" install --disable-pip-version-check --no-input -q "${PIP_PINS[@]}"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

json_get() { # json_get FILE EXPR (python expression on `d`)
	python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"
}

# post_json PATH BODY OUTFILE [TOKEN] -> prints the HTTP status code
post_json() {
	local auth=()
	[[ -n ${4:-} ]] && auth=(-H "Authorization: Bearer $4")
	curl -sS -o "$3" -w '%{http_code}' --max-time 30 -X POST -H 'Content-Type: application/json' \
		"${auth[@]}" --data "$2" "$BASE$1"
}

# ---- build ----
if [[ -n ${GRPC_BIN:-} ]]; then
	BIN="$GRPC_BIN"
else
	log "cargo build -p chat-sys"
	cargo build -p chat-sys </dev/null
	BIN="$CARGO_TARGET_DIR/debug/chat-sys"
fi
[[ -x $BIN ]] || {
	log "SKIP: no chat-sys binary"
	exit 77
}
"$BIN" serve --help 2>/dev/null | grep -q -- '--grpc-port' || {
	log "chat-sys serve has no --grpc-port"
	exit 1
}

ensure_venv

WORK="$(mktemp -d /tmp/chat-sys-grpc.XXXXXX)"
SERVER_PID=""
cleanup() {
	local rc=$?
	if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	if ((rc != 0)) && [[ -f $WORK/server.log ]]; then
		echo "----- last lines of the server log -----" >&2
		tail -n 60 "$WORK/server.log" >&2 || true
		echo "-----" >&2
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT

# ---- Python stubs from proto/ ----
mkdir -p "$WORK/stubs"
"$VENV/bin/python" -m grpc_tools.protoc -I proto --python_out="$WORK/stubs" --grpc_python_out="$WORK/stubs" \
	auth/v1/auth.proto connection/v1/connection.proto message/v1/message.proto

# ---- server ----
HTTP_PORT="$(free_port)"
WS_PORT="$(free_port)"
GRPC_PORT="$(free_port)"
BASE="http://127.0.0.1:$HTTP_PORT"
"$BIN" client create --data-dir "$WORK/data" --id "$SERVICE_ID" --secret "$SERVICE_SECRET" </dev/null >/dev/null
log "starting chat-sys serve (REST $HTTP_PORT, STOMP $WS_PORT, gRPC $GRPC_PORT)"
"$BIN" serve --data-dir "$WORK/data" --http-port "$HTTP_PORT" --ws-port "$WS_PORT" --grpc-port "$GRPC_PORT" \
	</dev/null >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 1 120); do
	curl -fsS --max-time 2 "$BASE/readyz" >/dev/null 2>&1 && break
	kill -0 "$SERVER_PID" 2>/dev/null || {
		log "server exited before becoming ready"
		exit 1
	}
	((i < 120)) || {
		log "server not ready after 60s"
		exit 1
	}
	sleep 0.5
done

# ---- users, a conversation, a service credential (REST) ----
tokens=()
for name in grpc-alice grpc-bob grpc-carol; do
	body="{\"username\":\"$name\",\"password\":\"correct horse battery\"}"
	code="$(post_json /api/v1/auth/register "$body" "$WORK/reg.json")"
	[[ $code == 2?? ]] || {
		log "register $name: HTTP $code: $(head -c 300 "$WORK/reg.json")"
		exit 1
	}
	code="$(post_json /auth/login "$body" "$WORK/login.json")"
	[[ $code == 2?? ]] || {
		log "login $name: HTTP $code: $(head -c 300 "$WORK/login.json")"
		exit 1
	}
	tokens+=("$(json_get "$WORK/login.json" 'd["data"]["accessToken"]')")
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
