#!/usr/bin/env bash
# The fanout benchmark against the scale-out topology (issue #8), with one command:
#
#   scripts/bench-scaleout.sh                  # release build, full size, docs/bench/results-scaleout.json
#   scripts/bench-scaleout.sh --size tiny      # extra arguments go to `chat-bench run`
#
# 1. Builds chat-sys (`--features kafka`) and chat-bench in release mode (CARGO_TARGET_DIR,
#    default /var/cache/chat-sys-target) and copies both binaries into a scratch directory
#    (others may rebuild the shared ones during the run);
# 2. starts PostgreSQL and Redis (scripts/services.sh) and Kafka (scripts/kafka.sh) when they
#    are not running, and gives the run a fresh PostgreSQL database, a Redis database index,
#    and a Kafka topic and consumer group of its own;
# 3. starts the roles as processes, as docs/ops/topology.md and tests/e2e/lib/topology.js do:
#    `chat-sys core` (REST, gRPC, outbox relay to Kafka), the gateways' OAuth2 client
#    (`chat-sys client create --scopes gateway`), `chat-sys fanout` worker(s), and two
#    `chat-sys gateway --node-id ...` reaching the core over gRPC with that client; each on
#    ports 0 (read from its `chat-sys ROLE serving` log line), waited for on /readyz;
# 4. runs `chat-bench run --size full --scenarios fanout --peers none --topology scale-out
#    --results docs/bench/results-scaleout.json` against them (arguments given to this script
#    are added and replace those defaults; relative paths are from the repository root):
#    connections alternate between the two gateways (the members of every conversation sit
#    on both), and the server CPU and memory are summed over every role process (PostgreSQL,
#    Redis and Kafka are not counted);
# 5. stops the roles, drops the database, and stops the services it had to start.
#
# One fanout worker by default: docs/ops/topology.md runs one per machine (a second one on
# another machine for failover, as tests/external/scaleout.sh does). On this 2-core machine,
# shared with the load generator, PostgreSQL, Redis and Kafka, a second worker adds no CPU,
# only a second Kafka consumer and Redis client whose overhead would count in the measured
# CPU; set BENCH_FANOUTS=2 to measure that shape anyway.
#
# Exit status: chat-bench's (non-zero when chat-sys lost, duplicated or reordered a message,
# or had an error), or non-zero when the topology could not be started.
#
# Environment:
#   CHAT_SYS_BIN, CHAT_BENCH_BIN  use these binaries (chat-sys built with --features kafka)
#                                 instead of the release build
#   BENCH_FANOUTS                 fanout workers (default 1)
#   BENCH_KAFKA_PARTITIONS        partitions of the run's topic (default 8)
#   BENCH_KEEP_SERVICES=1         leave services this script started running
#   BENCH_KEEP=1                  keep the scratch directory (role logs, config)
#   CHAT_TEST_POSTGRES_URL, CHAT_TEST_REDIS_URL, CHAT_TEST_KAFKA_BOOTSTRAP (defaults: the
#                                 local services of scripts/services.sh and scripts/kafka.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/chat-sys-target}"

log() { echo "bench-scaleout: $*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

# shellcheck source=scripts/lib/args.sh
. scripts/lib/args.sh

FANOUTS="${BENCH_FANOUTS:-1}"
PARTITIONS="${BENCH_KAFKA_PARTITIONS:-8}"
[[ $FANOUTS =~ ^[1-9][0-9]*$ ]] || die "BENCH_FANOUTS must be a positive integer, not '$FANOUTS'"
[[ $PARTITIONS =~ ^[1-9][0-9]*$ ]] || die "BENCH_KAFKA_PARTITIONS must be a positive integer, not '$PARTITIONS'"
GATEWAYS=2

# ------------------------------------------------------------------ binaries ----

if [[ -z ${CHAT_SYS_BIN:-} || -z ${CHAT_BENCH_BIN:-} ]]; then
	log "cargo build --release -p chat-sys --features chat-sys/kafka -p chat-bench"
	cargo build --release -p chat-sys -p chat-bench --features chat-sys/kafka </dev/null
fi
SYS_SRC="${CHAT_SYS_BIN:-$CARGO_TARGET_DIR/release/chat-sys}"
BENCH_SRC="${CHAT_BENCH_BIN:-$CARGO_TARGET_DIR/release/chat-bench}"
[[ -x $SYS_SRC ]] || die "no chat-sys binary at $SYS_SRC"
[[ -x $BENCH_SRC ]] || die "no chat-bench binary at $BENCH_SRC"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/chat-sys-bench-scaleout.XXXXXX")"
# The directory keeps the profile's name (release/debug): chat-bench records the server
# build from the path of CHAT_SYS_BIN.
PROFILE="$(basename "$(dirname "$SYS_SRC")")"
mkdir -p "$WORK/bin/$PROFILE"
cp "$SYS_SRC" "$WORK/bin/$PROFILE/chat-sys"
cp "$BENCH_SRC" "$WORK/bin/$PROFILE/chat-bench"
CHAT="$WORK/bin/$PROFILE/chat-sys"
BENCH="$WORK/bin/$PROFILE/chat-bench"

# ------------------------------------------------------------------- cleanup ----

ROLE_PIDS=()
ROLE_NAMES=()
DB_NAME=""
PG_ARGS=()
STARTED_SERVICES=()
STARTED_KAFKA=0

# shellcheck disable=SC2317 # (called from the EXIT trap)
stop_roles() {
	local pid i
	((${#ROLE_PIDS[@]})) || return 0
	for pid in "${ROLE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for ((i = 0; i < 100; i++)); do
		local alive=0
		for pid in "${ROLE_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	for pid in "${ROLE_PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	ROLE_PIDS=()
}

# shellcheck disable=SC2317 # (the EXIT trap)
cleanup() {
	local rc=$? name
	trap - EXIT INT TERM
	stop_roles
	if ((rc != 0)); then
		for name in "${ROLE_NAMES[@]}"; do
			[[ -f $WORK/$name.log ]] || continue
			echo "----- last lines of $name.log -----" >&2
			tail -n 30 "$WORK/$name.log" >&2 || true
		done
	fi
	if [[ -n $DB_NAME ]]; then
		PGPASSWORD="$PG_PASSWORD" psql "${PG_ARGS[@]}" -d postgres -q \
			-c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" </dev/null >/dev/null 2>&1 ||
			log "could not drop database $DB_NAME"
	fi
	if [[ ${BENCH_KEEP_SERVICES:-0} != 1 ]]; then
		if ((STARTED_KAFKA)); then bash scripts/kafka.sh stop || true; fi
		if ((${#STARTED_SERVICES[@]})); then bash scripts/services.sh stop "${STARTED_SERVICES[@]}" || true; fi
	fi
	if [[ ${BENCH_KEEP:-0} == 1 || $rc != 0 ]]; then
		log "kept $WORK (role logs, chat-sys.toml)"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
"$CHAT" core --help >/dev/null 2>&1 || die "$SYS_SRC has no \`core\` role"

# ------------------------------------------------------------------ services ----

# What answered before, so only what this script started is stopped at the end.
before="$(bash scripts/services.sh status 2>/dev/null || true)"
kafka_before=0
bash scripts/kafka.sh status >/dev/null 2>&1 && kafka_before=1
if ! grep -q '^postgresql *up' <<<"$before" || ! grep -q '^redis *up' <<<"$before"; then
	bash scripts/services.sh start >&2
	for svc in mariadb postgresql redis; do
		grep -q "^$svc *up" <<<"$before" || STARTED_SERVICES+=("$svc")
	done
fi
bash scripts/kafka.sh start >&2
((kafka_before)) || STARTED_KAFKA=1
eval "$(bash scripts/services.sh env)"
eval "$(bash scripts/kafka.sh env)"

ID="$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"

# A fresh PostgreSQL database.
[[ $CHAT_TEST_POSTGRES_URL =~ ^postgres(ql)?://([^:@/]+):([^@/]*)@([^:/]+)(:([0-9]+))?/?$ ]] ||
	die "CHAT_TEST_POSTGRES_URL=$CHAT_TEST_POSTGRES_URL: expected postgres://USER:PASSWORD@HOST[:PORT]"
PG_USER="${BASH_REMATCH[2]}"
PG_PASSWORD="${BASH_REMATCH[3]}"
PG_HOST="${BASH_REMATCH[4]}"
PG_PORT="${BASH_REMATCH[6]:-5432}"
PG_ARGS=(-h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER")
DB_NAME="bench_$ID"
PGPASSWORD="$PG_PASSWORD" psql "${PG_ARGS[@]}" -d postgres -q -c "CREATE DATABASE $DB_NAME" </dev/null >/dev/null
DATABASE_URL="postgres://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/$DB_NAME"

# A Redis database index of its own: 1..15 except 5 (crates/redis/tests/flush.rs flushes 5),
# as tests/e2e/lib/topology.js picks them; node ids and user ids are unique to the run.
REDIS_DBS=(1 2 3 4 6 7 8 9 10 11 12 13 14 15)
[[ $CHAT_TEST_REDIS_URL =~ ^(rediss?://[^/]+)(/[0-9]*)?$ ]] ||
	die "CHAT_TEST_REDIS_URL=$CHAT_TEST_REDIS_URL: expected redis://HOST:PORT[/DB]"
REDIS_URL="${BASH_REMATCH[1]}/${REDIS_DBS[$((16#${ID:0:4} % ${#REDIS_DBS[@]}))]}"

SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# The benchmark settings of `chat-sys serve` in chat-bench (BENCH_CONFIG in
# crates/bench/src/target.rs: no per-user send rate, no gateway frame rate, cheap password
# hashing for the setup), plus the scale-out sections every role reads.
cat >"$WORK/chat-sys.toml" <<EOF
# Generated by scripts/bench-scaleout.sh.
log = "warn,chat_sys=info"

[database]
url = "$DATABASE_URL"

[redis]
url = "$REDIS_URL"

[kafka]
bootstrap = "$CHAT_TEST_KAFKA_BOOTSTRAP"
topic = "message.all.bench-$ID"
fanout_group = "fanout-bench-$ID"
partitions = $PARTITIONS

[core_client]
client_id = "gateway"
# grpc_url, token_url and client_secret come from the environment (the core's ports are
# known once it runs).

[limits]
sends_per_user_per_sec = 0

[gateway]
send_rate_per_sec = 1000000
send_burst = 1000000
max_sessions_per_user = 64

[auth]
argon2_memory_kib = 8
argon2_iterations = 1
argon2_parallelism = 1
access_ttl_secs = 86400
EOF

# --------------------------------------------------------------------- roles ----

# The gateways hold ~1,000 sockets each at the full size.
ulimit -n "$(ulimit -Hn)"

# start_role NAME ARG...: starts `chat-sys --config chat-sys.toml ARG...` in the background
# (output to $WORK/NAME.log); environment assignments prefixed to the call reach it.
start_role() {
	local name=$1
	shift
	(
		cd "$WORK"
		exec "$CHAT" --config "$WORK/chat-sys.toml" "$@"
	) </dev/null >"$WORK/$name.log" 2>&1 &
	ROLE_PIDS+=($!)
	ROLE_NAMES+=("$name")
}

# serving NAME PID ROLE: waits (120 s at most) for the role's `chat-sys ROLE serving k=v ...`
# log line and prints its fields, one `k=v` a line.
serving() {
	local name=$1 pid=$2 role=$3 line i
	for ((i = 0; i < 1200; i++)); do
		line="$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/$name.log" | grep -m1 "chat-sys $role serving" || true)"
		if [[ -n $line ]]; then
			grep -o '[a-z_]*=[^ ]*' <<<"${line#*chat-sys "$role" serving}"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || die "$name exited before serving"
		sleep 0.1
	done
	die "$name did not log 'chat-sys $role serving' within 120 s"
}

# port_of FIELDS KEY: the port of the `KEY=HOST:PORT` field.
port_of() {
	local v
	v="$(grep -m1 "^$2=" <<<"$1")" || die "no $2= in the serving line"
	echo "${v##*:}"
}

# ready NAME PID URL: waits (120 s at most) for URL/readyz to answer 2xx.
ready() {
	local name=$1 pid=$2 url=$3 i
	for ((i = 0; i < 600; i++)); do
		curl -fsS -o /dev/null --max-time 2 "$url/readyz" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || die "$name exited before /readyz answered"
		sleep 0.2
	done
	curl -sS --max-time 2 "$url/readyz" >&2 || true
	die "$name: $url/readyz not ready within 120 s"
}

export NO_COLOR=1 RUST_LOG="${RUST_LOG:-warn,chat_sys=info}"

log "starting chat-sys core (database $DB_NAME, redis $REDIS_URL, kafka $CHAT_TEST_KAFKA_BOOTSTRAP)"
start_role core core --data-dir "$WORK/core" --http-port 0 --grpc-port 0
CORE_PID=${ROLE_PIDS[-1]}
fields="$(serving core "$CORE_PID" core)"
REST="http://127.0.0.1:$(port_of "$fields" http)"
GRPC_PORT="$(port_of "$fields" grpc)"
ready core "$CORE_PID" "$REST"

(cd "$WORK" && "$CHAT" --config "$WORK/chat-sys.toml" client create --id gateway --secret "$SECRET" \
	--scopes gateway </dev/null >"$WORK/client.log" 2>&1) || {
	cat "$WORK/client.log" >&2
	die "chat-sys client create failed"
}

for ((i = 1; i <= FANOUTS; i++)); do
	log "starting chat-sys fanout $i/$FANOUTS"
	start_role "fanout$i" fanout --data-dir "$WORK/fanout$i" --http-port 0
	fields="$(serving "fanout$i" "${ROLE_PIDS[-1]}" fanout)"
	ready "fanout$i" "${ROLE_PIDS[-1]}" "http://127.0.0.1:$(port_of "$fields" http)"
done

export CHAT_CORE_CLIENT__GRPC_URL="http://127.0.0.1:$GRPC_PORT"
export CHAT_CORE_CLIENT__TOKEN_URL="$REST/oauth2/token"
export CHAT_CORE_CLIENT__CLIENT_SECRET="$SECRET"
WS_URLS=()
for ((i = 1; i <= GATEWAYS; i++)); do
	node="bench-$ID-$i"
	log "starting chat-sys gateway --node-id $node"
	start_role "gateway$i" gateway --node-id "$node" --data-dir "$WORK/$node" --http-port 0 --ws-port 0
	fields="$(serving "gateway$i" "${ROLE_PIDS[-1]}" gateway)"
	ready "gateway$i" "${ROLE_PIDS[-1]}" "http://127.0.0.1:$(port_of "$fields" http)"
	WS_URLS+=("ws://127.0.0.1:$(port_of "$fields" ws)/ws")
done
unset CHAT_CORE_CLIENT__GRPC_URL CHAT_CORE_CLIENT__TOKEN_URL CHAT_CORE_CLIENT__CLIENT_SECRET

# ----------------------------------------------------------------------- run ----

RESULTS=docs/bench/results-scaleout.json
for ((i = 1; i <= $#; i++)); do
	case ${!i} in
	--results) ((i < $#)) && j=$((i + 1)) && RESULTS="${!j}" ;;
	--results=*) RESULTS="${!i#--results=}" ;;
	esac
done
args=(run --rest "$REST" --topology scale-out)
has_arg --size "$@" || args+=(--size full)
has_arg --scenarios "$@" || args+=(--scenarios fanout)
has_arg --peers "$@" || args+=(--peers none)
has_arg --results "$@" || args+=(--results "$RESULTS")
for url in "${WS_URLS[@]}"; do args+=(--gateway "$url"); done
for pid in "${ROLE_PIDS[@]}"; do args+=(--pid "$pid"); done
log "roles: ${ROLE_NAMES[*]} (pids ${ROLE_PIDS[*]})"
log "chat-bench ${args[*]} $*"
# cpu_ticks PID: user + system CPU time of the process so far, in clock ticks (/proc/PID/stat
# fields 14 and 15, counted after the parenthesised command name).
cpu_ticks() {
	local stat
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || {
		echo 0
		return
	}
	read -r -a f <<<"${stat##*) }"
	echo $((f[11] + f[12]))
}
ticks_before=()
for pid in "${ROLE_PIDS[@]}"; do ticks_before+=("$(cpu_ticks "$pid")"); done
rc=0
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
CHAT_SYS_BIN="$CHAT" "$BENCH" "${args[@]}" "$@" </dev/null || rc=$?
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
hz="$(getconf CLK_TCK)"
per_role=()
for ((i = 0; i < ${#ROLE_PIDS[@]}; i++)); do
	t=$(($(cpu_ticks "${ROLE_PIDS[$i]}") - ticks_before[i]))
	per_role+=("${ROLE_NAMES[$i]}=$((t / hz)).$(printf '%02d' $((t * 100 / hz % 100)))")
done
log "CPU-seconds per role over the whole run (setup, warm-ups and drains included): ${per_role[*]}"
# The report shows how to repeat the run: this script's command line, not the scratch paths,
# ports and pids of the chat-bench command it ran; and how busy the shared machine was.
if [[ -f $RESULTS ]]; then
	python3 - "$RESULTS" "scripts/bench-scaleout.sh${*:+ $*}" "chat-bench ${args[*]}${*:+ $*}" \
		"# load average (1, 5, 15 min) before: $load_before, after: $load_after" \
		"# CPU-seconds per role over the whole run: ${per_role[*]}" <<'PY' || rc=1
import json, sys
path, script, bench, load, cpu = sys.argv[1:]
d = json.load(open(path))
d["commands"] = [script, "# which ran: " + bench, load, cpu]
json.dump(d, open(path, "w"), indent=2, ensure_ascii=False)
PY
fi
for ((i = 0; i < ${#ROLE_PIDS[@]}; i++)); do
	kill -0 "${ROLE_PIDS[$i]}" 2>/dev/null || {
		log "${ROLE_NAMES[$i]} exited during the run"
		rc=1
	}
done
exit "$rc"
