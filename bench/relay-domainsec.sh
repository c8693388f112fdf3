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
RUST_LOG=warn "$bin/domainsec-edge" run --data-dir "$work/edge" --config "$work/edge.toml" >"$work/edge.log" 2>&1 &
edge_pid=$!
pids+=($edge_pid)
# A self-signed SMTP certificate so the edge offers STARTTLS (the load generator accepts any).
"$bin/dsctl" cert new --edge bench1 --subject-name "CN=bench1.contoso.com" --domain-name bench1.contoso.com \
    --enable smtp >/dev/null || die "certificate task failed; see $work/edge.log"
for _ in $(seq 1 150); do (exec 3<>"/dev/tcp/127.0.0.1/$EDGE_PORT") 2>/dev/null && break; sleep 0.2; done

say "relay-bench → domainsec-edge 127.0.0.1:$EDGE_PORT → sink 127.0.0.1:$SINK_PORT: $MESSAGES messages, $CONCURRENCY connections, $SIZE bytes"
result="$("$bin/relay-bench" run --target "127.0.0.1:$EDGE_PORT" --sink-listen "127.0.0.1:$SINK_PORT" --starttls \
    --messages "$MESSAGES" --warmup "$WARMUP" --concurrency "$CONCURRENCY" --size "$SIZE" --timeout "$TIMEOUT" --json)"
peak_kib="$(awk '/VmHWM/ {print $2}' "/proc/$edge_pid/status")"
echo "$result" | python3 -c '
import json, sys
result = json.load(sys.stdin)
result["edge"] = {"peak_rss_kib": int(sys.argv[1])}
print(json.dumps(result))
' "$peak_kib"
say "edge peak RSS $((peak_kib / 1024)) MiB"
