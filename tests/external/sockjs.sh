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

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "sockjs: node/npm not found, skipping" >&2
	exit 77
fi

# Dependencies: `npm ci` when node_modules is missing or older than the lockfile.
stamp=tests/sockjs/node_modules/.chat-sys-lock
lock_sum="$(cksum <tests/sockjs/package-lock.json)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_sum" ]]; then
	echo "==> npm ci (tests/sockjs)"
	(cd tests/sockjs && npm ci --no-audit --no-fund --loglevel=error)
	echo "$lock_sum" >"$stamp"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/chat-sys-target}"
if [[ -n "${CHAT_SYS_BIN:-}" ]]; then
	bin="$CHAT_SYS_BIN"
else
	echo "==> cargo build -p chat-sys"
	cargo build -q -p chat-sys
	bin="$CARGO_TARGET_DIR/debug/chat-sys"
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/chat-sys-sockjs.XXXXXX")"
server_pid=""
cleanup() {
	if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$server_pid" 2>/dev/null || true
	fi
	if [[ -n "${SOCKJS_KEEP:-}" ]]; then
		echo "sockjs: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

# Two free ports on the loopback interface.
read -r http_port ws_port < <(node -e '
const net = require("net");
const one = () => new Promise((ok) => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => ok(p)); }); });
(async () => { const a = await one(); let b = await one(); while (b === a) b = await one(); console.log(a, b); })();')

echo "==> chat-sys serve (rest :$http_port, gateway :$ws_port)"
(
	cd "$tmp"
	env CHAT_GATEWAY__HEARTBEAT_SEND_MS=1000 CHAT_GATEWAY__HEARTBEAT_RECEIVE_MS=1000 \
		CHAT_GATEWAY__SOCKJS__STREAMING_LIMIT_BYTES=4096 RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 \
		"$bin" serve --data-dir "$tmp/data" --http-port "$http_port" --ws-port "$ws_port"
) >"$tmp/server.log" 2>&1 &
server_pid=$!

rest="http://127.0.0.1:$http_port"
for i in $(seq 600); do
	if curl -fsS -o /dev/null --max-time 2 "$rest/readyz" 2>/dev/null; then
		break
	fi
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "sockjs: chat-sys serve exited before ready:" >&2
		tail -n 40 "$tmp/server.log" >&2
		exit 1
	fi
	if ((i == 600)); then
		echo "sockjs: $rest/readyz not ready within 60 s" >&2
		tail -n 40 "$tmp/server.log" >&2
		exit 1
	fi
	sleep 0.1
done

# json_field FIELD.PATH: reads JSON on stdin, prints the field (fails when absent).
json_field() {
	node -e '
let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
  let v = JSON.parse(s); for (const k of process.argv[1].split(".")) v = v == null ? undefined : v[k];
  if (v === undefined || v === null) { console.error(`no ${process.argv[1]} in ${s}`); process.exit(1); }
  console.log(v);
});' "$1"
}

# api METHOD PATH JSON [TOKEN]: the response body; fails on a non-2xx status.
api() {
	local auth=()
	[[ -n "${4:-}" ]] && auth=(-H "Authorization: Bearer $4")
	curl -fsS --max-time 15 -X "$1" -H 'Content-Type: application/json' "${auth[@]}" -d "$3" "$rest$2"
}

suffix="$(node -e 'console.log(require("crypto").randomBytes(4).toString("hex"))')"
password="correct horse battery"
user() {
	local name="$1_$suffix" id token
	id="$(api POST /api/v1/auth/register "{\"username\":\"$name\",\"password\":\"$password\"}" | json_field userId)"
	token="$(api POST /auth/login "{\"username\":\"$name\",\"password\":\"$password\"}" | json_field data.accessToken)"
	echo "$id $token"
}
read -r alice_id alice_token < <(user sj_alice)
read -r bob_id bob_token < <(user sj_bob)
conversation_id="$(api POST /api/v1/conversations "{\"type\":\"DM\",\"memberIds\":[\"$bob_id\"]}" "$alice_token" |
	json_field conversationId)"

echo "==> node --test tests/sockjs/"
rc=0
SOCKJS_URL="http://127.0.0.1:$ws_port/ws" ALICE_ID="$alice_id" ALICE_TOKEN="$alice_token" \
	BOB_ID="$bob_id" BOB_TOKEN="$bob_token" CONVERSATION_ID="$conversation_id" \
	node --test --test-timeout=120000 tests/sockjs/ || rc=$?
if ((rc != 0)); then
	echo "sockjs: failed; server log tail:" >&2
	tail -n 60 "$tmp/server.log" >&2
fi
exit "$rc"
