#!/usr/bin/env bash
# The relay benchmark: the same load through DomainSec's edge and through Postfix, one after
# the other on this machine, and the ratio of their throughput.
#
#   sudo ./bench/relay.sh                       # 20,000 messages, 20 connections, 4 KiB, STARTTLS both hops
#   sudo MESSAGES=5000 ./bench/relay.sh
#
# Each side: relay-bench (load generator) → the relay → relay-bench's sink, loopback only; every
# message is on disk and fsynced before its 250 (DomainSec: file + directory fsync; Postfix: its
# default queue-file fsync). Reports messages/s accepted and delivered, submit and end-to-end
# latency percentiles and peak memory, then DomainSec ÷ Postfix for delivered messages/s.
# Needs root (Postfix's master) and Debian's apt for postfix and openssl (installed if missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export MESSAGES="${MESSAGES:-20000}" CONCURRENCY="${CONCURRENCY:-20}" SIZE="${SIZE:-4096}" WARMUP="${WARMUP:-500}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "== DomainSec ($MESSAGES messages, $CONCURRENCY connections, $SIZE bytes)" >&2
"$root/bench/relay-domainsec.sh" >"$out/domainsec.json"
(cd "$root" && cargo build --release -q -p domainsec-bench --bin relay-bench)
echo "== Postfix (same load)" >&2
RELAY_BENCH="${CARGO_TARGET_DIR:-$root/target}/release/relay-bench" "$root/bench/relay-postfix.sh" >"$out/postfix.json"

python3 - "$out/domainsec.json" "$out/postfix.json" <<'PY'
import json, sys
ds, pf = (json.load(open(path)) for path in sys.argv[1:3])
def row(name, r, memory):
    s, e = r["submit_latency_ms"], r["end_to_end_latency_ms"]
    return (f"| {name} | {r['accepted_per_second']:.0f} | {r['delivered_per_second']:.0f} | "
            f"{s['p50']:.1f} / {s['p99']:.1f} | {e['p50']:.0f} / {e['p99']:.0f} | {memory} |")
print(f"messages {ds['messages']}, connections {ds['concurrency']}, size {ds['size']} B, STARTTLS {ds['starttls']}")
print("| relay | accepted msg/s | delivered msg/s | submit ms p50 / p99 | end-to-end ms p50 / p99 | peak memory |")
print("| --- | --- | --- | --- | --- | --- |")
print(row("DomainSec edge", ds, f"{ds['edge']['peak_rss_kib'] / 1024:.0f} MiB RSS"))
postfix = pf.get("postfix", {})
memory = f"{postfix.get('peak_pss_kib', 0) / 1024:.0f} MiB PSS ({postfix.get('peak_rss_kib', 0) / 1024:.0f} MiB RSS summed)"
print(row("Postfix", pf, memory))
print(f"ratio (delivered msg/s, DomainSec / Postfix): {ds['delivered_per_second'] / pf['delivered_per_second']:.2f}x")
PY
