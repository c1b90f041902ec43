#!/usr/bin/env bash
# The benchmark harness cannot rot: builds chat-sys and chat-bench (debug) and runs every
# scenario once at a tiny size (seconds): fanout, ingest, idle connections, catch-up, the
# broadcast and SQLite limits, and the peers (RabbitMQ Web-STOMP, Centrifugo) only when
# they are installed/running. `chat-bench run` exits non-zero when chat-sys lost, duplicated
# or reordered a message, or had an error; the report is then written to a scratch
# directory (markdown and PNG plots checked).
#
# Exit 0 = passed, else failed (never skipped: chat-sys scenarios always run).
#
# Environment:
#   CHAT_SYS_BIN      use this server binary instead of `cargo build -p chat-sys`
#   CARGO_TARGET_DIR  default /var/cache/chat-sys-target
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
common_init bench.sh
make_workdir

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

"$BENCH" report --results "$WORK/results.json" --out "$WORK/benchmarks.md" --plots "$WORK/bench"
for f in "$WORK/bench/fanout-latency.png" "$WORK/bench/fanout-throughput.png"; do
	[[ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" == *PNG* ]] || {
		log "no PNG at $f"
		exit 1
	}
done
for section in "## Fanout" "## Ingest" "## Idle connections" "## Catch-up"; do
	grep -q "^$section" "$WORK/benchmarks.md" || {
		log "report lacks '$section'"
		exit 1
	}
done
log "passed"
