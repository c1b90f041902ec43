#!/usr/bin/env bash
# Property-based API check: Schemathesis against the running chat-sys server's own
# OpenAPI document (/openapi.json), authenticated as a freshly registered user.
# Checks: no 5xx (not_a_server_error) and responses match the documented schemas
# (response_schema_conformance).
#
# Exit 0 = passed, 77 = skipped (chat-sys binary or its `serve` subcommand absent), else failed.
#
# Tunables (environment; ST_ rather than CHAT_, which is the server's configuration namespace):
#   ST_MAX_EXAMPLES      test cases per API operation and phase (default 25)
#   ST_MAX_TIME          time budget of the schemathesis run in seconds (default 120): fuzzing
#                        and stateful testing repeat until it is spent
#   ST_STATEFUL_EXAMPLES stateful scenarios per round (default 100)
#   ST_STATEFUL_STEPS    maximum steps of a stateful scenario (default 10)
#   ST_MIN_STATEFUL_OPS  operations taking an {id} that the stateful phase must reach with
#                        2xx through the response links (default 15)
#   ST_SEED              generation seed (default 1, for reproducible CI); "random" for none
#   ST_TIMEOUT           hard limit for the schemathesis run in seconds (default 300)
#   ST_REGISTER_PATH     default /api/v1/auth/register
#   ST_LOGIN_PATH        default: /api/v1/auth/login, falling back to /auth/login
#   ST_VENV              default /var/cache/chat-sys-venv
#   ST_BIN               use this server binary instead of `cargo build -p chat-sys`
#   ST_EXTRA_ARGS        more `schemathesis run` arguments, split on spaces (a `--report` must
#                        keep ndjson: e.g. "--report ndjson,har --report-har-path /tmp/st.har")
#
# The document's response links (e.g. POST /api/v1/conversations -> every
# /api/v1/conversations/{id} operation) drive Schemathesis' stateful phase through real ids;
# after the run the script prints what each phase reached with 2xx and fails if the stateful
# phase did not run or reached too few id-taking operations.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
common_init schemathesis.sh

SCHEMATHESIS_VERSION=4.32.5
VENV="${ST_VENV:-/var/cache/chat-sys-venv}"
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-25}"
SEED="${ST_SEED:-1}"
RUN_TIMEOUT="${ST_TIMEOUT:-300}"
MAX_TIME="${ST_MAX_TIME:-120}"
STATEFUL_EXAMPLES="${ST_STATEFUL_EXAMPLES:-100}"
STATEFUL_STEPS="${ST_STATEFUL_STEPS:-10}"
MIN_STATEFUL_OPS="${ST_MIN_STATEFUL_OPS:-15}"
REGISTER_PATH="${ST_REGISTER_PATH:-/api/v1/auth/register}"
CREDS='{"username":"st-user","password":"correct horse battery"}'

# ensure_venv: the venv with schemathesis==SCHEMATHESIS_VERSION (recreated otherwise).
ensure_venv() {
	if "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
		return 0
	fi
	create_venv "$VENV"
	venv_pip_install "$VENV" "schemathesis==$SCHEMATHESIS_VERSION"
	"$VENV/bin/schemathesis" --version
}

# ---- build, or skip while the server does not exist yet ----
if [[ -n ${ST_BIN:-} ]]; then
	BIN="$ST_BIN" # a prebuilt server binary (e.g. a release build); no cargo build
else
	metadata="$(cargo metadata --no-deps --format-version 1 </dev/null)"
	if ! python3 -c 'import json, sys; m = json.load(sys.stdin); sys.exit(0 if any(p["name"] == "chat-sys" for p in m["packages"]) else 1)' <<<"$metadata"; then
		skip "no chat-sys package in the workspace yet"
	fi
	build_chat_sys
	[[ -x $BIN ]] || skip "package chat-sys builds no chat-sys binary yet"
fi
"$BIN" serve --help >/dev/null 2>&1 || skip "chat-sys has no working 'serve' subcommand yet"

ensure_venv

# ---- start the server ----
make_workdir

PORT="$(free_port)"
# --ws-port 0: the gateway (not under test) on a free port, not its fixed default.
ws_args=()
serve_has_flag --ws-port && ws_args=(--ws-port 0)
start_server "$PORT" "${ws_args[@]}"

# ---- authenticate ----
code="$(post_json "$REGISTER_PATH" "$CREDS" "$WORK/register.json")"
if [[ $code != 2?? && $code != 409 ]]; then
	log "register via POST $REGISTER_PATH failed: HTTP $code: $(head -c 500 "$WORK/register.json")"
	exit 1
fi

token=""
for path in ${ST_LOGIN_PATH:-/api/v1/auth/login /auth/login}; do
	code="$(post_json "$path" "$CREDS" "$WORK/login.json")"
	if [[ $code == 2?? ]]; then
		token="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["accessToken"])' <"$WORK/login.json")" || {
			log "login response from POST $path lacks .data.accessToken: $(head -c 500 "$WORK/login.json")"
			exit 1
		}
		log "logged in via POST $path"
		break
	fi
	log "login via POST $path: HTTP $code"
done
[[ -n $token ]] || {
	log "could not log in"
	exit 1
}

# ---- fuzz ----
seed_args=()
[[ $SEED == random ]] || seed_args=(--seed "$SEED")
read -r -a extra_args <<<"${ST_EXTRA_ARGS:-}"
log "schemathesis run $BASE/openapi.json ($MAX_EXAMPLES examples per operation and phase, ${MAX_TIME}s budget)"
# The stateful phase follows the document's response links (register -> login -> refresh,
# create a conversation -> send to it -> react to the message, ...): positive data only (a
# rejected step ends a chain), more and longer scenarios than the defaults. Schemathesis
# reads schemathesis.toml from its working directory.
cat >"$WORK/schemathesis.toml" <<EOF
[generation]
max-examples = $MAX_EXAMPLES

[phases.stateful]
max-steps = $STATEFUL_STEPS

[phases.stateful.generation]
max-examples = $STATEFUL_EXAMPLES
mode = "positive"
EOF
# Run from the scratch dir so Schemathesis' example database stays out of the repo.
# --workers 1: with 2 workers schemathesis 4.32.5 once crashed with a Python AST error.
rc=0
(
	cd "$WORK"
	timeout --kill-after=30 "$RUN_TIMEOUT" "$VENV/bin/schemathesis" run "$BASE/openapi.json" \
		--header "Authorization: Bearer $token" \
		--checks not_a_server_error,response_schema_conformance \
		"${seed_args[@]}" \
		--workers 1 \
		--max-time "$MAX_TIME" \
		--report ndjson --report-ndjson-path "$WORK/events.ndjson" \
		"${extra_args[@]}" \
		--request-timeout 10 \
		--wait-for-schema 30 \
		--no-color </dev/null
) || rc=$?
if ((rc != 0)); then
	log "FAILED: schemathesis exited $rc"
	exit "$rc"
fi

# ---- depth: what the run reached ----
# Per phase: requests to documented operations and those that answered 2xx; the stateful
# phase must have run and reached, through the links, operations that take an id.
curl -fsS --max-time 10 -o "$WORK/openapi.json" "$BASE/openapi.json"
python3 - "$WORK/events.ndjson" "$WORK/openapi.json" "$MIN_STATEFUL_OPS" <<'PY'
import collections, json, sys

path, doc_path, min_ops = sys.argv[1], sys.argv[2], int(sys.argv[3])
methods = ("get", "put", "post", "delete", "patch")
documented = {f"{m.upper()} {p}" for p, item in json.load(open(doc_path))["paths"].items() for m in methods if m in item}
requests = collections.Counter()
ok = collections.defaultdict(set)
tested = set()
linked = 0
for line in open(path, encoding="utf-8"):
    event = json.loads(line)
    finished = event.get("ScenarioFinished")
    if not finished:
        continue
    phase, recorder = finished["phase"], finished["recorder"]
    for case_id, interaction in (recorder.get("interactions") or {}).items():
        case = recorder["cases"].get(case_id)
        if case is None or not interaction.get("response"):
            continue
        op = f'{case["value"]["method"]} {case["value"]["path"]}'
        if op not in documented:
            continue  # probes with undocumented methods
        tested.add(op)
        requests[phase] += 1
        if phase == "stateful" and case.get("is_transition_applied"):
            linked += 1
        if 200 <= interaction["response"]["status_code"] < 300:
            ok[phase].add(op)
all_ok = set().union(*ok.values())
for phase in ("examples", "coverage", "fuzzing", "stateful"):
    if requests[phase]:
        print(f"schemathesis.sh: {phase}: {requests[phase]} requests, 2xx from {len(ok[phase])} operations")
print(f"schemathesis.sh: stateful: {linked} steps through response links")
deep = sorted(op for op in ok["stateful"] if "{id}" in op)
print(f"schemathesis.sh: stateful 2xx on id-taking operations ({len(deep)}): {', '.join(deep)}")
print(f"schemathesis.sh: 2xx coverage: {len(all_ok)}/{len(tested)} tested operations answered 2xx")
missing = sorted(tested - all_ok)
if missing:
    print(f"schemathesis.sh: never 2xx: {', '.join(missing)}")
if not requests["stateful"]:
    sys.exit("schemathesis.sh: FAILED: the stateful phase did not run")
if len(deep) < min_ops:
    sys.exit(f"schemathesis.sh: FAILED: the stateful phase reached only {len(deep)} id-taking operations "
             f"with 2xx (at least {min_ops} expected): are the response links intact?")
PY
