#!/usr/bin/env bash
# Scale-out check (issue #5): the roles as separate processes — one `chat-sys core`, two
# `chat-sys fanout` workers, two `chat-sys gateway`s — over MariaDB/PostgreSQL, Redis and a
# real Apache Kafka broker (KRaft, scripts/kafka.sh), with STOMP clients split across the
# gateways:
#   1. tests/scaleout (node --test): cross-gateway order and exactly-once, kill -9 of a fanout
#      worker / a gateway / the core between broker ack and outbox mark, a flushed Redis and a
#      trimmed stream, broker and database restarts; on MariaDB;
#   2. the whole main-path suite tests/e2e against the topology on MariaDB and on PostgreSQL
#      (CHAT_E2E_TOPOLOGY, lib/topology.js).
#
# Exit 0 = passed, 77 = skipped (node/npm absent, or Kafka cannot be started outside CI),
# else failed.
# Environment: CHAT_SYS_BIN (a binary built with `--features kafka,failpoints`),
# CARGO_TARGET_DIR, SCALEOUT_TIMEOUT (seconds, default 1500), E2E_ARGS (extra node args).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
common_init scaleout.sh

require_node
ensure_npm_deps tests/e2e
command -v redis-cli >/dev/null || skip "redis-cli not installed (scripts/services.sh installs it)"

if ! bash scripts/kafka.sh start >&2; then
	[[ -n ${CI:-} ]] && exit 1
	skip "the Kafka broker could not be started (bash scripts/kafka.sh start)"
fi
eval "$(bash scripts/kafka.sh env)"
eval "$(bash scripts/services.sh env)"
export CHAT_TEST_KAFKA_BOOTSTRAP CHAT_TEST_MYSQL_URL CHAT_TEST_POSTGRES_URL CHAT_TEST_REDIS_URL

CHAT_SYS_FEATURES="${CHAT_SYS_FEATURES:-kafka,failpoints}"
export CHAT_SYS_FEATURES
build_chat_sys "${CHAT_SYS_BIN:-}"
export CHAT_SYS_BIN="$BIN"

read -r -a extra_args <<<"${E2E_ARGS:-}"
run_node() {
	timeout --kill-after=30 "${SCALEOUT_TIMEOUT:-1500}" node --test --test-reporter=spec "$@" </dev/null
}

rc=0
log "fault scenarios on MariaDB: node --test tests/scaleout/"
CHAT_SCALEOUT_DB=mysql run_node --test-concurrency=1 "${extra_args[@]}" tests/scaleout/ || rc=1
for db in mysql postgres; do
	log "main-path suite against the topology on $db: node --test tests/e2e/"
	CHAT_E2E_TOPOLOGY=$db run_node "${extra_args[@]}" tests/e2e/ || rc=1
done
exit "$rc"
