#!/usr/bin/env bash
# Installs and starts the benchmark peers of `chat-bench` (docs/benchmarks.md):
#   - RabbitMQ (Debian's rabbitmq-server) with the rabbitmq_web_stomp plugin: STOMP over
#     WebSocket on 127.0.0.1:15674 at /ws, user bench/bench (guest works only on localhost too);
#   - Centrifugo v6 built from the Go module proxy into $CENTRIFUGO_DIR (default ~/go/bin).
#
# Usage:
#   scripts/bench-peers.sh install     install both (apt-get, go install); idempotent
#   scripts/bench-peers.sh start       install if needed, then start RabbitMQ (Centrifugo is
#                                      started by chat-bench itself, one process per run)
#   scripts/bench-peers.sh stop        stop RabbitMQ
#   scripts/bench-peers.sh env         print CHAT_BENCH_CENTRIFUGO=... and CHAT_BENCH_RABBITMQ_URL=...
#
# Environment: CENTRIFUGO_VERSION (default v6.9.1), CENTRIFUGO_DIR (default $HOME/go/bin).
set -euo pipefail

CENTRIFUGO_VERSION="${CENTRIFUGO_VERSION:-v6.9.1}"
CENTRIFUGO_DIR="${CENTRIFUGO_DIR:-$HOME/go/bin}"
CENTRIFUGO_BIN="$CENTRIFUGO_DIR/centrifugo"
RABBIT_WS_PORT=15674

log() { echo "bench-peers.sh: $*" >&2; }

install_rabbitmq() {
	if ! command -v rabbitmq-server >/dev/null 2>&1 && [[ ! -x /usr/sbin/rabbitmq-server ]]; then
		log "apt-get install rabbitmq-server"
		DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rabbitmq-server </dev/null >&2
	fi
	mkdir -p /etc/rabbitmq
	# Loopback only; the Web-STOMP listener on 15674; plain STOMP and AMQP stay on loopback too.
	cat >/etc/rabbitmq/rabbitmq.conf <<CONF
listeners.tcp.default = 127.0.0.1:5672
web_stomp.tcp.ip = 127.0.0.1
web_stomp.tcp.port = $RABBIT_WS_PORT
web_stomp.ws_path = /ws
loopback_users = none
CONF
	echo "[rabbitmq_web_stomp]." >/etc/rabbitmq/enabled_plugins
}

install_centrifugo() {
	command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
	# `go install` builds report version v0.0.0; the module version is in the build info.
	if [[ -x $CENTRIFUGO_BIN ]] && go version -m "$CENTRIFUGO_BIN" 2>/dev/null |
		grep -q "github.com/centrifugal/centrifugo/v6[[:space:]]*$CENTRIFUGO_VERSION"; then
		return 0
	fi
	command -v go >/dev/null 2>&1 || {
		log "go is not installed: cannot build Centrifugo"
		return 1
	}
	log "go install github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION (into $CENTRIFUGO_DIR)"
	mkdir -p "$CENTRIFUGO_DIR"
	GOBIN="$CENTRIFUGO_DIR" go install "github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION"
}

rabbit_up() {
	curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$RABBIT_WS_PORT/ws" 2>/dev/null ||
		# the WebSocket endpoint answers a plain GET with 400/426; any HTTP answer means up
		[[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$RABBIT_WS_PORT/ws" 2>/dev/null)" != 000 ]]
}

start_rabbitmq() {
	if rabbit_up; then
		return 0
	fi
	log "starting rabbitmq-server"
	# No systemd here: run the server detached, with the hard open-files limit (the fanout
	# and idle scenarios open thousands of connections; at 1024 RabbitMQ refuses them).
	# Debian's /usr/sbin/rabbitmq-server switches user with `su`, whose PAM session resets
	# the limit to 1024: switch with setpriv (no PAM) instead.
	(
		ulimit -n "$(ulimit -Hn)"
		cd /var/lib/rabbitmq
		HOME=/var/lib/rabbitmq RABBITMQ_NODENAME=rabbit@localhost nohup setpriv --reuid=rabbitmq --regid=rabbitmq \
			--init-groups /usr/lib/rabbitmq/bin/rabbitmq-server </dev/null >/tmp/rabbitmq-bench.log 2>&1 &
	)
	for _ in $(seq 1 120); do
		rabbit_up && break
		sleep 1
	done
	rabbit_up || {
		log "RabbitMQ Web-STOMP not up on :$RABBIT_WS_PORT (see /tmp/rabbitmq-bench.log)"
		return 1
	}
	RABBITMQ_NODENAME=rabbit@localhost rabbitmqctl add_user bench bench >/dev/null 2>&1 || true
	RABBITMQ_NODENAME=rabbit@localhost rabbitmqctl set_permissions -p / bench '.*' '.*' '.*' >/dev/null 2>&1 || true
	log "RabbitMQ Web-STOMP on ws://127.0.0.1:$RABBIT_WS_PORT/ws"
}

case "${1:-start}" in
install)
	install_rabbitmq
	install_centrifugo
	;;
start)
	install_rabbitmq
	install_centrifugo
	start_rabbitmq
	;;
stop)
	RABBITMQ_NODENAME=rabbit@localhost rabbitmqctl stop >/dev/null 2>&1 || true
	;;
env)
	echo "CHAT_BENCH_CENTRIFUGO=$CENTRIFUGO_BIN"
	echo "CHAT_BENCH_RABBITMQ_URL=ws://127.0.0.1:$RABBIT_WS_PORT/ws"
	;;
*)
	log "unknown command ${1}: use install, start, stop or env"
	exit 2
	;;
esac
