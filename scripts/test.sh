#!/usr/bin/env bash
# THE test command for chat-sys: starts MariaDB/PostgreSQL/Redis/Kafka, runs the whole
# Rust test suite, then the external (black-box) checks in tests/external/.
#
#   bash scripts/test.sh [extra cargo test args...]
#
# Environment:
#   CHAT_SKIP_SERVICES=1   do not start local services (use the CHAT_TEST_* URLs you exported)
#   CHAT_SKIP_EXTERNAL=1   skip tests/external/run.sh
#   CHAT_SYS_FEATURES      features of the chat-sys binary (default kafka,failpoints)
#   CARGO_TARGET_DIR       default /var/cache/chat-sys-target (shared with .ci/run)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ${CHAT_SKIP_SERVICES:-0} != 1 ]]; then
	bash scripts/services.sh start
	# Apache Kafka (KRaft, jars from Maven Central cached under /var/cache/chat-sys-kafka).
	bash scripts/kafka.sh start
fi

# Base URLs without a database name; each test appends its own fresh database.
eval "$(bash scripts/services.sh env)"
eval "$(bash scripts/kafka.sh env)"
export CHAT_TEST_MYSQL_URL CHAT_TEST_POSTGRES_URL CHAT_TEST_REDIS_URL CHAT_TEST_KAFKA_BOOTSTRAP

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/chat-sys-target}"
mkdir -p "$CARGO_TARGET_DIR"

# One chat-sys binary for every check: with the Kafka event log (scale-out roles) and the
# fault-injection points of the crash tests (tests/external/scaleout.sh).
export CHAT_SYS_FEATURES="${CHAT_SYS_FEATURES:-kafka,failpoints}"
features="chat-sys/${CHAT_SYS_FEATURES//,/,chat-sys/}"

echo "==> cargo test --workspace --all-targets --no-fail-fast --features $features $*"
# Keep going after a failure so one run reports everything; fail at the end.
cargo_rc=0
cargo test --workspace --all-targets --no-fail-fast --features "$features" "$@" || cargo_rc=$?

external_rc=0
if [[ -f tests/external/run.sh && ${CHAT_SKIP_EXTERNAL:-0} != 1 ]]; then
	echo "==> tests/external/run.sh"
	bash tests/external/run.sh || external_rc=$?
fi
if ((cargo_rc != 0 || external_rc != 0)); then
	echo "==> FAILED: cargo test exit ${cargo_rc}, external checks exit ${external_rc}"
	exit 1
fi
