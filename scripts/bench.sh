#!/usr/bin/env bash
# The full benchmark of docs/benchmarks.md, re-runnable with one command:
#
#   scripts/bench.sh                 # release build, peers, every scenario, scale-out, report
#   scripts/bench.sh --size tiny     # extra arguments go to `chat-bench run` (both runs);
#                                    # --size and --peers override the defaults; results and
#                                    # the report always go to docs/ (run it in a clone to
#                                    # keep the committed ones)
#
# Builds chat-sys (with the Kafka event log of the scale-out roles, `--features kafka`; `serve`
# is the same with or without it) and chat-bench in release mode (CARGO_TARGET_DIR, default
# /var/cache/chat-sys-target), installs and starts the peers (scripts/bench-peers.sh:
# RabbitMQ Web-STOMP from Debian, Centrifugo v6 from the Go module proxy; set
# BENCH_PEERS=none to skip them), runs `chat-bench run --size full` against a single-node
# `chat-sys serve` (results in docs/bench/results.json), then the fanout against the
# scale-out topology (scripts/bench-scaleout.sh: core, fanout and two gateways on
# PostgreSQL, Redis and Kafka; results in docs/bench/results-scaleout.json; set
# BENCH_SCALEOUT=none to skip it), and writes docs/benchmarks.md and docs/bench/*.png from
# both with `chat-bench report`. Takes ~20 minutes after the build on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/chat-sys-target}"

cargo build --release -p chat-sys -p chat-bench --features chat-sys/kafka
export CHAT_SYS_BIN="$CARGO_TARGET_DIR/release/chat-sys"
BENCH="$CARGO_TARGET_DIR/release/chat-bench"

peers=available
if [[ ${BENCH_PEERS:-} == none ]]; then
	peers=none
else
	bash scripts/bench-peers.sh start || {
		echo "bench.sh: peers unavailable; running chat-sys and the limits only" >&2
		peers=none
	}
fi

# shellcheck source=scripts/lib/args.sh
. scripts/lib/args.sh
for fixed in --results --out --plots; do
	if has_arg "$fixed" "$@"; then
		echo "bench.sh: $fixed is fixed (docs/bench/...); run chat-bench directly to write elsewhere" >&2
		exit 2
	fi
done
args=()
has_arg --size "$@" || args+=(--size full)
has_arg --peers "$@" || args+=(--peers "$peers")

"$BENCH" run "${args[@]}" --results docs/bench/results.json "$@"

results=(--results docs/bench/results.json)
if [[ ${BENCH_SCALEOUT:-} != none ]]; then
	CHAT_BENCH_BIN="$BENCH" bash scripts/bench-scaleout.sh "$@"
	results+=(--results docs/bench/results-scaleout.json)
fi
"$BENCH" report "${results[@]}" --out docs/benchmarks.md --plots docs/bench
