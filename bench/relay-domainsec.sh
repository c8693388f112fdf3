#!/usr/bin/env bash
# DomainSec's relay under the same load as bench/relay-postfix.sh: relay-bench → one
# domainsec-edge (subscribed to a real controller, configured through dsctl) → relay-bench's
# sink, all on loopback, STARTTLS on both hops, every message fsynced (file and directory)
# before its 250.
#
#   ./bench/relay-domainsec.sh                       # 20,000 messages, 20 connections, 4 KiB
#   MESSAGES=2000 ./bench/relay-domainsec.sh
#
# Prints one JSON object on stdout (relay-bench's, with an "edge" member: peak RSS from
# the kernel's VmHWM) and a summary on stderr. The edge's data dir (spool) lives under
# /var/tmp, a disk like Postfix's queue in the reference run. Stops everything on exit.
#
# Environment: EDGE_PORT (2725) SINK_PORT (2726) MESSAGES (20000) CONCURRENCY (20)
#   SIZE (4096) WARMUP (500) TIMEOUT (300s) DESTINATION_CONCURRENCY (20) KEEP.
#   RESTART_AFTER (unset): seconds into the load at which the edge gets RESTART_SIGNAL (TERM)
#   and is started again on the same spool (bench/drain.sh); the JSON then has a "restart"
#   member (exit code, drain_ms = signal → exit, down_ms = signal → listening again).
#   EDGE_CPUS, LOAD_CPUS (unset): taskset CPU lists for the edge and for relay-bench.
#   RECONNECT_WINDOW (30s): how long the load generator keeps reconnecting meanwhile.
set -euo pipefail

EDGE_PORT="${EDGE_PORT:-2725}"
SINK_PORT="${SINK_PORT:-2726}"
MESSAGES="${MESSAGES:-20000}"
CONCURRENCY="${CONCURRENCY:-20}"
SIZE="${SIZE:-4096}"
WARMUP="${WARMUP:-500}"
TIMEOUT="${TIMEOUT:-300s}"
DESTINATION_CONCURRENCY="${DESTINATION_CONCURRENCY:-20}"
ADMIN_PORT="${ADMIN_PORT:-50072}"
SYNC_PORT="${SYNC_PORT:-50071}"

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-$root/target}/release"
say() { echo "relay-domainsec: $*" >&2; }
die() { say "$*"; exit 1; }

work="$(mktemp -d /var/tmp/domainsec-relay-bench.XXXXXX)"
database="domainsec_relay_bench"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ -n "${server:-}" ]] && psql "$server" -qc "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
    if [[ -n "${KEEP:-}" ]]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

(cd "$root" && cargo build --release -q --bins)
server="$("$root/deploy/postgres-local.sh")"
psql "$server" -qc "DROP DATABASE IF EXISTS $database" -c "CREATE DATABASE $database" >/dev/null
url="${server%/*}/$database"

"$bin/domainsec-controller" init --org Contoso --database-url "$url" --state-dir "$work/state" \
    --out-admin "$work/admin.toml" --controller "127.0.0.1:$ADMIN_PORT" >/dev/null
"$bin/domainsec-controller" serve --database-url "$url" --state-dir "$work/state" \
    --admin-listen "127.0.0.1:$ADMIN_PORT" --edge-listen "127.0.0.1:$SYNC_PORT" >"$work/controller.log" 2>&1 &
pids+=($!)
export DSCTL_CREDENTIALS="$work/admin.toml"
dsctl() { "$bin/dsctl" "$@" >/dev/null; }
for _ in $(seq 1 150); do "$bin/dsctl" whoami >/dev/null 2>&1 && break; sleep 0.2; done

dsctl accepted-domain add contoso.com
dsctl edge add bench1 --fqdn bench1.contoso.com
# The organization's servers submit through FromHub (relay to any domain, loopback only).
dsctl receive-connector new FromHub --edge bench1 --bindings "127.0.0.1:$EDGE_PORT" --remote-ip-ranges 127.0.0.1 \
    --permission-groups exchange-servers --auth-mechanism tls --protocol-logging-level none --max-message-size 10MB
dsctl send-connector new Internet --address-spaces '*' --dns-routing --source-edges bench1 --protocol-logging-level none
dsctl edge new-subscription bench1 --out "$work/bench1.subscription"
"$bin/domainsec-edge" subscribe --file "$work/bench1.subscription" --data-dir "$work/edge" >/dev/null
cat >"$work/edge.toml" <<TOML
[queue]
max_connections_per_destination = $DESTINATION_CONCURRENCY
connection_idle = "10s"

[limits]
max_sessions_per_ip = $((CONCURRENCY + 10))

[dns]
static_only = true
[dns.mx]
"example.net" = [{ preference = 10, exchange = "sink.example.net" }]
[dns.hosts]
"sink.example.net" = ["127.0.0.1:$SINK_PORT"]
TOML
start_edge() {
    RUST_LOG=warn ${EDGE_CPUS:+taskset -c "$EDGE_CPUS"} "$bin/domainsec-edge" run --data-dir "$work/edge" --config "$work/edge.toml" >>"$work/edge.log" 2>&1 &
    edge_pid=$!
    pids+=($edge_pid)
}
wait_for_port() {
    for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$EDGE_PORT") 2>/dev/null && return 0; sleep 0.05; done
    die "the edge does not listen on $EDGE_PORT; see $work/edge.log"
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
start_edge
# A self-signed SMTP certificate so the edge offers STARTTLS (the load generator accepts any).
"$bin/dsctl" cert new --edge bench1 --subject-name "CN=bench1.contoso.com" --domain-name bench1.contoso.com \
    --enable smtp >/dev/null || die "certificate task failed; see $work/edge.log"
wait_for_port

say "relay-bench → domainsec-edge 127.0.0.1:$EDGE_PORT → sink 127.0.0.1:$SINK_PORT: $MESSAGES messages, $CONCURRENCY connections, $SIZE bytes"
bench_args=(run --target "127.0.0.1:$EDGE_PORT" --sink-listen "127.0.0.1:$SINK_PORT" --starttls
    --messages "$MESSAGES" --warmup "$WARMUP" --concurrency "$CONCURRENCY" --size "$SIZE" --timeout "$TIMEOUT"
    --reconnect-window "${RECONNECT_WINDOW:-30s}" --json)
restart='null'
if [[ -z "${RESTART_AFTER:-}" ]]; then
    result="$(${LOAD_CPUS:+taskset -c "$LOAD_CPUS"} "$bin/relay-bench" "${bench_args[@]}")"
else
    # The restart benchmark (bench/drain.sh): RESTART_AFTER seconds into the load, send
    # RESTART_SIGNAL (TERM) to the edge, time until it exits, start it again on the same data
    # dir and spool; the load generator reconnects meanwhile.
    ${LOAD_CPUS:+taskset -c "$LOAD_CPUS"} "$bin/relay-bench" "${bench_args[@]}" >"$work/result.json" &
    bench_pid=$!
    sleep "$RESTART_AFTER"
    peak_before="$(awk '/VmHWM/ {print $2}' "/proc/$edge_pid/status")"
    signalled=$(now_ms)
    kill "-${RESTART_SIGNAL:-TERM}" "$edge_pid"
    set +e; wait "$edge_pid"; edge_exit=$?; set -e
    exited=$(now_ms)
    start_edge
    wait_for_port
    listening=$(now_ms)
    say "edge: SIG${RESTART_SIGNAL:-TERM} → exit $edge_exit after $((exited - signalled)) ms; listening again after $((listening - signalled)) ms"
    restart="{\"signal\": \"${RESTART_SIGNAL:-TERM}\", \"exit_code\": $edge_exit, \"drain_ms\": $((exited - signalled)), \"down_ms\": $((listening - signalled)), \"peak_rss_kib_before\": $peak_before}"
    set +e; wait "$bench_pid"; bench_exit=$?; set -e
    result="$(cat "$work/result.json")"
    [[ $bench_exit -eq 0 ]] || say "relay-bench exited $bench_exit (accepted messages not delivered before the deadline?)"
fi
peak_kib="$(awk '/VmHWM/ {print $2}' "/proc/$edge_pid/status")"
echo "$result" | python3 -c '
import json, sys
result = json.load(sys.stdin)
result["edge"] = {"peak_rss_kib": int(sys.argv[1])}
result["restart"] = json.loads(sys.argv[2])
print(json.dumps(result))
' "$peak_kib" "$restart"
say "edge peak RSS $((peak_kib / 1024)) MiB"
