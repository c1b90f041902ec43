#!/usr/bin/env bash
# Property-based API check: Schemathesis against the running chat-sys server's own
# OpenAPI document (/openapi.json), authenticated as a freshly registered user.
# Checks: no 5xx (not_a_server_error) and responses match the documented schemas
# (response_schema_conformance).
#
# Exit 0 = passed, 77 = skipped (chat-sys binary or its `serve` subcommand absent), else failed.
#
# Tunables (environment):
#   CHAT_ST_MAX_EXAMPLES  test cases per API operation (default 25)
#   CHAT_ST_SEED          generation seed (default 1, for reproducible CI); "random" for none
#   CHAT_ST_TIMEOUT       hard limit for the schemathesis run in seconds (default 900)
#   CHAT_ST_REGISTER_PATH default /api/v1/auth/register
#   CHAT_ST_LOGIN_PATH    default: /api/v1/auth/login, falling back to /auth/login
#   CHAT_ST_VENV          default /var/cache/chat-sys-venv
#   CHAT_ST_BIN           use this server binary instead of `cargo build -p chat-sys`
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

SCHEMATHESIS_VERSION=4.32.5
VENV="${CHAT_ST_VENV:-/var/cache/chat-sys-venv}"
MAX_EXAMPLES="${CHAT_ST_MAX_EXAMPLES:-25}"
SEED="${CHAT_ST_SEED:-1}"
ST_TIMEOUT="${CHAT_ST_TIMEOUT:-900}"
REGISTER_PATH="${CHAT_ST_REGISTER_PATH:-/api/v1/auth/register}"
CREDS='{"username":"st-user","password":"correct horse battery"}'
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/chat-sys-target}"

log() { echo "schemathesis.sh: $*" >&2; }
skip() {
	log "SKIP: $*"
	exit 77
}

ensure_venv() {
	if "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
		return 0
	fi
	log "installing schemathesis==$SCHEMATHESIS_VERSION into $VENV"
	rm -rf "$VENV"
	if ! python3 -m venv "$VENV" 2>/dev/null; then
		# Debian's python3 ships venv separately.
		rm -rf "$VENV"
		DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv </dev/null >&2
		/usr/bin/python3 -m venv "$VENV"
	fi
	"$VENV/bin/pip" install --disable-pip-version-check --no-input -q "schemathesis==$SCHEMATHESIS_VERSION"
	"$VENV/bin/schemathesis" --version
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# post_json PATH OUTFILE -> prints the HTTP status code
post_json() {
	curl -sS -o "$2" -w '%{http_code}' --max-time 30 -X POST \
		-H 'Content-Type: application/json' --data "$CREDS" "$BASE$1"
}

# ---- build, or skip while the server does not exist yet ----
if [[ -n ${CHAT_ST_BIN:-} ]]; then
	BIN="$CHAT_ST_BIN" # a prebuilt server binary (e.g. a release build); no cargo build
else
	metadata="$(cargo metadata --no-deps --format-version 1 </dev/null)"
	if ! python3 -c 'import json, sys; m = json.load(sys.stdin); sys.exit(0 if any(p["name"] == "chat-sys" for p in m["packages"]) else 1)' <<<"$metadata"; then
		skip "no chat-sys package in the workspace yet"
	fi
	log "cargo build -p chat-sys"
	cargo build -p chat-sys </dev/null
	BIN="$CARGO_TARGET_DIR/debug/chat-sys"
	[[ -x $BIN ]] || skip "package chat-sys builds no chat-sys binary yet"
fi
"$BIN" serve --help >/dev/null 2>&1 || skip "chat-sys has no working 'serve' subcommand yet"

ensure_venv

# ---- start the server ----
WORK="$(mktemp -d /tmp/chat-sys-schemathesis.XXXXXX)"
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

PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
log "starting chat-sys serve on $BASE"
"$BIN" serve --data-dir "$WORK/data" --http-port "$PORT" </dev/null >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for i in $(seq 1 120); do
	curl -fsS --max-time 2 "$BASE/readyz" >/dev/null 2>&1 && break
	kill -0 "$SERVER_PID" 2>/dev/null || {
		log "server exited before becoming ready"
		exit 1
	}
	((i < 120)) || {
		log "server not ready at $BASE/readyz after 60s"
		exit 1
	}
	sleep 0.5
done

# ---- authenticate ----
code="$(post_json "$REGISTER_PATH" "$WORK/register.json")"
if [[ $code != 2?? && $code != 409 ]]; then
	log "register via POST $REGISTER_PATH failed: HTTP $code: $(head -c 500 "$WORK/register.json")"
	exit 1
fi

token=""
for path in ${CHAT_ST_LOGIN_PATH:-/api/v1/auth/login /auth/login}; do
	code="$(post_json "$path" "$WORK/login.json")"
	if [[ $code == 2?? ]]; then
		token="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["accessToken"])' <"$WORK/login.json")" || {
			log "login response from POST $path lacks .data.accessToken: $(head -c 500 "$WORK/login.json")"
			exit 1
		}
		log "logged in via POST $path"
		break
	fi
	log "login via POST $path: HTTP $code"
done
[[ -n $token ]] || {
	log "could not log in"
	exit 1
}

# ---- fuzz ----
seed_args=()
[[ $SEED == random ]] || seed_args=(--seed "$SEED")
log "schemathesis run $BASE/openapi.json (max $MAX_EXAMPLES examples per operation)"
# Run from the scratch dir so Schemathesis' example database stays out of the repo.
(
	cd "$WORK"
	timeout --kill-after=30 "$ST_TIMEOUT" "$VENV/bin/schemathesis" run "$BASE/openapi.json" \
		--header "Authorization: Bearer $token" \
		--checks not_a_server_error,response_schema_conformance \
		--max-examples "$MAX_EXAMPLES" \
		"${seed_args[@]}" \
		--workers 2 \
		--request-timeout 10 \
		--wait-for-schema 30 \
		--no-color </dev/null
)
