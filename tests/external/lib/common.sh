# Shared helpers of the outside checks in tests/external/*.sh. Source it, then call
# common_init NAME before anything else:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#   common_init grpc.sh
#
# Conventions: exit 0 = passed, 77 = skipped, else failed. The helpers keep their state in
# globals: BIN (the chat-sys binary), WORK (the scratch directory), SERVER_PID, BASE (the REST
# base URL). Every helper returns non-zero (after a log line) on failure, so callers under
# `set -e` stop there.

# common_init NAME: the log prefix, cd to the repository root, the default cargo target dir.
common_init() {
	COMMON_NAME="$1"
	cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
	export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/chat-sys-target}"
	BIN=""
	WORK=""
	SERVER_PID=""
	BASE=""
	CLEANUP_PID_VARS=(SERVER_PID)
	CLEANUP_LOGS=(server.log)
	CLEANUP_TAIL_LINES=60
	KEEP_WORK=""
}

# log MESSAGE...: a line on stderr, prefixed with the check's name.
log() { echo "$COMMON_NAME: $*" >&2; }

# skip REASON...: report the skip and exit 77.
skip() {
	log "SKIP: $*"
	exit 77
}

# require_node: skip (77) unless node and npm are installed.
require_node() {
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		skip "node/npm not installed"
	fi
}

# ensure_npm_deps DIR: `npm ci` in DIR when node_modules is missing or was installed from
# another package-lock.json (a sha256 stamp in node_modules records the lock it came from).
ensure_npm_deps() {
	local dir=$1 lock_sum stamp
	lock_sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
	stamp="$dir/node_modules/.chat-sys-lock.sha256"
	if [[ ! -d $dir/node_modules || ! -f $stamp || "$(cat "$stamp")" != "$lock_sum" ]]; then
		log "npm ci in $dir"
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error </dev/null) || return 1
		echo "$lock_sum" >"$stamp"
	fi
}

# create_venv DIR: a fresh Python venv at DIR (installs python3-venv with apt when the
# interpreter lacks the venv module, as Debian's does).
create_venv() {
	local venv=$1
	rm -rf "$venv"
	if ! python3 -m venv "$venv" 2>/dev/null; then
		rm -rf "$venv"
		DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2 || return 1
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv </dev/null >&2 || return 1
		/usr/bin/python3 -m venv "$venv" || return 1
	fi
}

# venv_pip_install DIR PACKAGE...: pip install the pinned packages into the venv at DIR.
venv_pip_install() {
	local venv=$1
	shift
	log "installing $* into $venv"
	"$venv/bin/pip" install --disable-pip-version-check --no-input -q "$@"
}

# build_chat_sys [PREBUILT]: sets BIN to PREBUILT when given, else runs
# `cargo build -p chat-sys` (with --features $CHAT_SYS_FEATURES when set) and sets BIN to the debug binary. Fails when the build fails
# (it does not check that BIN exists: callers decide between skip and fail).
build_chat_sys() {
	if [[ -n ${1:-} ]]; then
		BIN="$1"
	else
		local features=()
		[[ -n ${CHAT_SYS_FEATURES:-} ]] && features=(--features "$CHAT_SYS_FEATURES")
		log "cargo build -p chat-sys ${features[*]}"
		cargo build -p chat-sys "${features[@]}" </dev/null || return 1
		BIN="$CARGO_TARGET_DIR/debug/chat-sys"
	fi
}

# serve_has_flag FLAG: whether `chat-sys serve --help` lists FLAG (e.g. --grpc-port).
serve_has_flag() {
	"$BIN" serve --help 2>/dev/null | grep -q -- "$1"
}

# free_port: prints a currently free TCP port on 127.0.0.1, chosen below the kernel's ephemeral
# range (net.ipv4.ip_local_port_range, 32768+ by default): outgoing connections of concurrent
# tests take ephemeral ports, so a port picked there may be gone by the time the server binds it.
free_port() {
	python3 -c '
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(1000):
    port = random.randrange(20000, max(20001, min(low, 32768)))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port in 20000..32767")
'
}

# make_workdir: creates the scratch directory WORK (/tmp/chat-sys-NAME.XXXXXX) and installs
# the EXIT trap that cleans up after the check (see cleanup_on_exit).
make_workdir() {
	WORK="$(mktemp -d "${TMPDIR:-/tmp}/chat-sys-${COMMON_NAME%.sh}.XXXXXX")"
	trap cleanup_on_exit EXIT
}

# stop_pid PID: SIGTERM, up to 5 s to exit, then SIGKILL; reaps it. No-op for "" or a gone PID.
stop_pid() {
	local pid=$1
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# cleanup_on_exit: the EXIT trap. Stops the processes whose PIDs are in the variables named by
# CLEANUP_PID_VARS (default SERVER_PID); on failure prints the last CLEANUP_TAIL_LINES lines
# of each WORK file in CLEANUP_LOGS (default server.log); removes WORK unless KEEP_WORK is set.
# Keeps the script's exit status.
cleanup_on_exit() {
	local rc=$? var f
	for var in "${CLEANUP_PID_VARS[@]}"; do
		stop_pid "${!var:-}"
	done
	if ((rc != 0)); then
		for f in "${CLEANUP_LOGS[@]}"; do
			[[ -f $WORK/$f ]] || continue
			echo "----- last lines of $f -----" >&2
			tail -n "$CLEANUP_TAIL_LINES" "$WORK/$f" >&2 || true
			echo "-----" >&2
		done
	fi
	if [[ -n $KEEP_WORK ]]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}

# wait_for_url URL PID WHAT [SECONDS]: polls URL until it answers 2xx; fails when process PID
# exits first or after SECONDS (default 60).
wait_for_url() {
	local url=$1 pid=$2 what=$3 secs=${4:-60} i tries
	tries=$((secs * 5))
	for ((i = 1; ; i++)); do
		curl -fsS -o /dev/null --max-time 2 "$url" >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || {
			log "$what exited before becoming ready"
			return 1
		}
		((i < tries)) || {
			log "$what not ready at $url after ${secs}s"
			return 1
		}
		sleep 0.2
	done
}

# start_server HTTP_PORT SERVE_ARG...: starts `$BIN serve --data-dir $WORK/data --http-port
# HTTP_PORT SERVE_ARG...` in the background (stdin closed, output to $WORK/server.log; in
# SERVER_CWD when set), sets SERVER_PID and BASE, and waits for /readyz. Listeners the caller
# does not place (--ws-port, --grpc-port) get free ports, never their fixed defaults, so a
# chat-sys the user runs next to the tests is not in the way. Environment assignments prefixed
# to the call reach the server.
start_server() {
	local port=$1 flag
	shift
	for flag in --ws-port --grpc-port; do
		[[ " $* " == *" $flag "* ]] || set -- "$@" "$flag" 0
	done
	BASE="http://127.0.0.1:$port"
	log "starting chat-sys serve on $BASE ($*)"
	(
		cd "${SERVER_CWD:-.}"
		exec "$BIN" serve --data-dir "$WORK/data" --http-port "$port" "$@"
	) </dev/null >"$WORK/server.log" 2>&1 &
	SERVER_PID=$!
	wait_for_url "$BASE/readyz" "$SERVER_PID" "chat-sys serve"
}

# json_get FILE EXPR: prints the Python expression EXPR evaluated on the JSON in FILE as `d`.
json_get() {
	python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"
}

# post_json PATH BODY OUTFILE [TOKEN]: POSTs the JSON BODY to $BASE$PATH (with a bearer
# TOKEN when given), writes the response body to OUTFILE and prints the HTTP status code.
post_json() {
	local auth=()
	[[ -n ${4:-} ]] && auth=(-H "Authorization: Bearer $4")
	curl -sS -o "$3" -w '%{http_code}' --max-time 30 -X POST -H 'Content-Type: application/json' \
		"${auth[@]}" --data "$2" "$BASE$1"
}

# register_and_login USERNAME PASSWORD: registers the user (POST /api/v1/auth/register, 2xx
# required) and logs in (POST /auth/login, 2xx required); prints "USER_ID ACCESS_TOKEN".
register_and_login() {
	local body code id token
	body="{\"username\":\"$1\",\"password\":\"$2\"}"
	code="$(post_json /api/v1/auth/register "$body" "$WORK/register.json")" || return 1
	[[ $code == 2?? ]] || {
		log "register $1: HTTP $code: $(head -c 300 "$WORK/register.json")"
		return 1
	}
	id="$(json_get "$WORK/register.json" 'd.get("data", d)["userId"]')" || return 1
	code="$(post_json /auth/login "$body" "$WORK/login.json")" || return 1
	[[ $code == 2?? ]] || {
		log "login $1: HTTP $code: $(head -c 300 "$WORK/login.json")"
		return 1
	}
	token="$(json_get "$WORK/login.json" 'd["data"]["accessToken"]')" || return 1
	[[ -n $id && $id != None && -n $token && $token != None ]] || {
		log "register/login $1: no userId or accessToken"
		return 1
	}
	echo "$id $token"
}
