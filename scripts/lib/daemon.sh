# Shared helpers of scripts/services.sh and scripts/kafka.sh (source it).

# wait_until SECONDS CMD...: poll CMD until it succeeds; return 1 after SECONDS.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.5
	done
}

# show_log FILE [LINES]: the last LINES (default 30) lines of FILE on stderr, if it exists.
show_log() {
	[[ -f $1 ]] || return 0
	echo "----- last lines of $1 -----" >&2
	tail -n "${2:-30}" "$1" >&2 || true
	echo "-----" >&2
}

# tcp_open PORT: something accepts TCP connections on 127.0.0.1:PORT (no protocol or auth involved).
tcp_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# pid_alive PID: the process exists.
pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
