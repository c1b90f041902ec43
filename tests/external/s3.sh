#!/usr/bin/env bash
# Attachments on a real S3 API server (moto's server, installed from PyPI into its own venv):
#   1. the Rust tests that run against S3 when CHAT_TEST_S3_URL is set (chat-blob round trips
#      with multipart uploads; the REST attachment tests' s3:: variants);
#   2. the chat-sys binary (`serve` with CHAT_ATTACHMENTS__BACKEND=s3) driven over HTTP:
#      upload, send, download as a member, denied as a non-member, oversize rejected with a
#      413 problem, the object really in the bucket, delete + `attachments cleanup` removing it.
#
# Exit 0 = passed, 77 = skipped (no chat-sys binary yet, or moto cannot be installed), else failed.
#
# Environment (S3_ rather than CHAT_, which is the server's configuration namespace):
#   S3_VENV     default /var/cache/chat-sys-s3-venv (kept apart from the schemathesis venv:
#               moto's server pins Flask/Werkzeug versions of its own)
#   S3_BIN      use this server binary instead of `cargo build -p chat-sys`
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
common_init s3.sh

MOTO_VERSION=5.2.5
VENV="${S3_VENV:-/var/cache/chat-sys-s3-venv}"
BUCKET=chat-attachments

# ensure_venv: the venv with moto[server]==MOTO_VERSION (recreated otherwise).
ensure_venv() {
	if [[ -x $VENV/bin/moto_server ]] && "$VENV/bin/pip" show moto 2>/dev/null | grep -qx "Version: $MOTO_VERSION"; then
		return 0
	fi
	create_venv "$VENV" || return 1
	venv_pip_install "$VENV" "moto[server]==$MOTO_VERSION"
}

build_chat_sys "${S3_BIN:-}" || skip "chat-sys does not build"
[[ -x $BIN ]] || skip "no chat-sys binary"
"$BIN" attachments --help >/dev/null 2>&1 || skip "chat-sys has no attachments command yet"
ensure_venv || skip "cannot install moto[server]==$MOTO_VERSION"

MOTO_PID=""
make_workdir
CLEANUP_PID_VARS=(SERVER_PID MOTO_PID)
CLEANUP_LOGS=(server.log moto.log cleanup.log)
CLEANUP_TAIL_LINES=40

# ---- the S3 API server ----
S3_PORT="$(free_port)"
S3_URL="http://127.0.0.1:$S3_PORT"
log "starting moto_server on $S3_URL"
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" </dev/null >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
wait_for_url "$S3_URL/" "$MOTO_PID" moto_server 50
for b in "$BUCKET" chat-test; do
	curl -fsS -X PUT "$S3_URL/$b" >/dev/null
done

# ---- 1. the Rust tests against S3 ----
export CHAT_TEST_S3_URL="$S3_URL" CHAT_TEST_S3_BUCKET=chat-test
log "cargo test (S3 variants) against $S3_URL"
cargo test -p chat-blob --test local </dev/null
cargo test -p chat-core --test rest_attachments s3:: </dev/null
unset CHAT_TEST_S3_URL CHAT_TEST_S3_BUCKET

# ---- 2. the binary, configured for S3 ----
PORT="$(free_port)"
export CHAT_ATTACHMENTS__BACKEND=s3 \
	CHAT_ATTACHMENTS__S3__BUCKET="$BUCKET" \
	CHAT_ATTACHMENTS__S3__ENDPOINT="$S3_URL" \
	CHAT_ATTACHMENTS__S3__ALLOW_HTTP=true \
	CHAT_ATTACHMENTS__S3__ACCESS_KEY_ID=testing \
	CHAT_ATTACHMENTS__S3__SECRET_ACCESS_KEY=testing \
	CHAT_LIMITS__MAX_ATTACHMENT_BYTES=1048576
log "attachments in s3://$BUCKET at $S3_URL"
# Other listeners (not under test) on free ports, not their fixed defaults.
extra=(--ws-port 0)
serve_has_flag --grpc-port && extra+=(--grpc-port 0)
start_server "$PORT" "${extra[@]}"

python3 - "$BASE" "$S3_URL" "$BUCKET" "$WORK/state.json" <<'PY'
import json, sys, urllib.request, urllib.error, uuid

base, s3, bucket, state_file = sys.argv[1:5]
checks = 0

def call(method, path, token=None, body=None, headers=None, raw=False):
    h = dict(headers or {})
    data = None
    if body is not None and not isinstance(body, bytes):
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    elif body is not None:
        data = body
    if token:
        h["Authorization"] = "Bearer " + token
    req = urllib.request.Request(base + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            payload = r.read()
            return r.status, r.headers, payload if raw else (json.loads(payload) if payload else None)
    except urllib.error.HTTPError as e:
        payload = e.read()
        return e.code, e.headers, json.loads(payload) if payload else None

def expect(cond, what):
    global checks
    if not cond:
        raise SystemExit("FAILED: " + what)
    checks += 1
    print("ok", what)

def multipart(name, content_type, content):
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}

def user(name):
    pw = "password-" + name
    call("POST", "/api/v1/auth/register", body={"username": name, "password": pw, "displayName": name})
    st, _, b = call("POST", "/api/v1/auth/login", body={"username": name, "password": pw})
    expect(st == 200, f"login {name}")
    return b["data"]["accessToken"]

alice = user("alice")
bob = user("bob")
mallory = user("mallory")
st, _, me = call("GET", "/api/v1/users/me", bob)
bob_id = me["userId"]
st, _, conv = call("POST", "/api/v1/conversations", alice, {"type": "CHANNEL", "name": "files", "isPrivate": True})
expect(st == 201, "private channel created")
cid = conv["conversationId"]
st, _, _ = call("POST", f"/api/v1/conversations/{cid}/members", alice, {"userId": bob_id})
expect(st in (200, 201), "bob added")

png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000030000000208060000001f15c489")
content = png + bytes(range(256)) * 2000  # ~512 KB behind a PNG header
body, h = multipart("photo.png", "image/png", content)
st, hdr, att = call("POST", f"/api/v1/conversations/{cid}/attachments", alice, body, h)
expect(st == 201 and att["size"] == len(content) and att["width"] == 3 and att["height"] == 2,
       f"upload to S3: 201 with size and dimensions ({st} {att})")
st, _, msg = call("POST", f"/api/v1/conversations/{cid}/messages", alice,
                  {"text": "see attached", "attachmentIds": [att["attachmentId"]]})
expect(st == 201 and msg["attachments"][0]["attachmentId"] == att["attachmentId"], "send attaches it")
st, hdr, data = call("GET", att["url"], bob, raw=True)
expect(st == 200 and data == content, "member downloads the exact bytes")
expect(hdr.get("Content-Type") == "image/png" and hdr.get("X-Content-Type-Options") == "nosniff", "download headers")
st, _, p = call("GET", att["url"], mallory)
expect(st == 404 and p["status"] == 404, "non-member of a private channel: 404 problem")
big, h = multipart("big.bin", "application/octet-stream", b"x" * (1024 * 1024 + 1))
st, _, p = call("POST", f"/api/v1/conversations/{cid}/attachments", alice, big, h)
expect(st == 413 and p["type"] == "urn:chat-sys:problem:attachment-too-large" and "1048576" in p["detail"],
       f"oversize: 413 problem naming the limit ({st} {p})")
key = f"attachments/{cid}/{att['attachmentId']}"
with urllib.request.urlopen(f"{s3}/{bucket}?list-type=2&prefix=attachments/{cid}/", timeout=30) as r:
    listing = r.read().decode()
expect(key in listing and listing.count("<Key>") == 1, "exactly one object in the bucket (nothing kept of the oversize upload)")
st, _, tomb = call("DELETE", f"/api/v1/messages/{msg['messageId']}", alice)
expect(st == 200 and tomb["attachments"] == [], "delete: tombstone without attachments")
st, _, _ = call("GET", att["url"], bob)
expect(st == 404, "deleted message's attachment: 404")
json.dump({"key": key, "id": att["attachmentId"], "cid": cid}, open(state_file, "w"))
print(f"http checks: {checks} passed")
PY

# ---- cleanup removes the deleted attachment's object ----
stop_pid "$SERVER_PID"
SERVER_PID=""
"$BIN" attachments cleanup --data-dir "$WORK/data" --older-than 24h </dev/null >"$WORK/cleanup.log" 2>&1
cat "$WORK/cleanup.log"
read -r KEY ID CID < <(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["key"], s["id"], s["cid"])' "$WORK/state.json")
grep -q "removed $ID" "$WORK/cleanup.log" || {
	log "cleanup did not report removing $ID"
	exit 1
}
if curl -fsS "$S3_URL/$BUCKET?list-type=2&prefix=attachments/$CID/" | grep -q "<Key>"; then
	log "object $KEY still in the bucket after cleanup"
	exit 1
fi
log "cleanup removed $ID from the bucket and the database"
