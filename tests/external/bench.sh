#!/usr/bin/env bash
# The benchmark harness cannot rot: builds chat-sys and chat-bench (debug) and runs every
# scenario once at a tiny size (seconds): fanout, ingest, idle connections, catch-up, the
# broadcast and SQLite limits, and the peers (RabbitMQ Web-STOMP, Centrifugo) only when
# they are installed/running; then the tiny fanout against the scale-out topology
# (scripts/bench-scaleout.sh: core, fanout, two gateways on PostgreSQL, Redis and Kafka).
# `chat-bench run` exits non-zero when chat-sys lost, duplicated or reordered a message, or
# had an error; the report of both runs is then written to a scratch directory (markdown
# and PNG plots checked).
#
# Exit 0 = passed, else failed (never skipped: chat-sys scenarios always run; outside CI the
# scale-out part alone is left out when Kafka cannot be started).
#
# Environment:
#   CHAT_SYS_BIN      use this server binary (built with --features kafka) instead of
#                     `cargo build -p chat-sys --features $CHAT_SYS_FEATURES`
#   CHAT_SYS_FEATURES default kafka,failpoints (the binary tests/external/scaleout.sh uses)
#   CARGO_TARGET_DIR  default /var/cache/chat-sys-target
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
common_init bench.sh
make_workdir

export CHAT_SYS_FEATURES="${CHAT_SYS_FEATURES:-kafka,failpoints}"
build_chat_sys "${CHAT_SYS_BIN:-}"
[[ -x $BIN ]] || {
	log "no executable chat-sys binary at $BIN"
	exit 1
}
log "cargo build -p chat-bench"
cargo build -p chat-bench </dev/null
BENCH="$CARGO_TARGET_DIR/debug/chat-bench"

log "chat-bench run --size tiny"
CHAT_SYS_BIN="$BIN" timeout --kill-after=30 600 \
	"$BENCH" run --size tiny --peers available --results "$WORK/results.json" </dev/null

results=(--results "$WORK/results.json")
sections=("## Fanout" "## Ingest" "## Idle connections" "## Catch-up")
if bash scripts/kafka.sh start >&2; then
	log "scripts/bench-scaleout.sh --size tiny"
	CHAT_SYS_BIN="$BIN" CHAT_BENCH_BIN="$BENCH" timeout --kill-after=30 300 \
		bash scripts/bench-scaleout.sh --size tiny --results "$WORK/results-scaleout.json" </dev/null
	results+=(--results "$WORK/results-scaleout.json")
	sections+=("## Fanout: scale-out topology")
elif [[ -n ${CI:-} ]]; then
	log "the Kafka broker could not be started (bash scripts/kafka.sh start)"
	exit 1
else
	log "Kafka could not be started: the scale-out run is left out"
fi

"$BENCH" report "${results[@]}" --out "$WORK/benchmarks.md" --plots "$WORK/bench"
for f in "$WORK/bench/fanout-latency.png" "$WORK/bench/fanout-throughput.png"; do
	[[ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" == *PNG* ]] || {
		log "no PNG at $f"
		exit 1
	}
done
for section in "${sections[@]}"; do
	grep -q "^$section" "$WORK/benchmarks.md" || {
		log "report lacks '$section'"
		exit 1
	}
done
log "passed"
