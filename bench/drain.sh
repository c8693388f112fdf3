#!/usr/bin/env bash
# The restart benchmark (#14): under load, SIGTERM to the edge, then start it again on the
# same spool; count what the next hop received twice and what was acknowledged but never
# arrived.
#
#   ./bench/drain.sh                   # 3 runs with SIGTERM, then 1 with SIGKILL for reference
#   RUNS=5 KILL_REFERENCE=0 ./bench/drain.sh
#
# Each run is bench/relay-domainsec.sh with RESTART_AFTER set: relay-bench (20 connections,
# STARTTLS, 4 KiB) → domainsec-edge → relay-bench's sink (STARTTLS), the edge signalled
# RESTART_AFTER (3) s into the load. Every message carries a unique X-Bench-Id; the sink counts
# an id it has seen before as a duplicate. "lost" = accepted by the edge (250) and not at the
# sink when the run's deadline passed; "delivered without a 250" = at the sink although the
# load generator never got the edge's reply (its sender would send it again). Submissions the edge refused while draining (421) or
# whose connection closed before a reply are not accepted and are sent again under new ids.
# The edge runs on core 0, the load generator and its sink on core 1 (taskset; EDGE_CPUS and
# LOAD_CPUS override).
# Exit status 1 if any SIGTERM run duplicated or lost a message.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${RUNS:-3}"
KILL_REFERENCE="${KILL_REFERENCE:-1}"
export MESSAGES="${MESSAGES:-20000}" RESTART_AFTER="${RESTART_AFTER:-3}" TIMEOUT="${TIMEOUT:-120s}"
export EDGE_CPUS="${EDGE_CPUS:-0}" LOAD_CPUS="${LOAD_CPUS:-1}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

signals=()
for _ in $(seq 1 "$RUNS"); do signals+=(TERM); done
[[ "$KILL_REFERENCE" == 1 ]] && signals+=(KILL)
run=0
for signal in "${signals[@]}"; do
    run=$((run + 1))
    echo "== run $run: SIG$signal $RESTART_AFTER s into $MESSAGES messages" >&2
    RESTART_SIGNAL="$signal" "$root/bench/relay-domainsec.sh" >"$out/run$run.json" || true
done

python3 - "$out" "$run" <<'PY'
import json, os, sys
out, runs = sys.argv[1], int(sys.argv[2])
print("| run | signal | edge exit | drain ms (signal → exit) | down ms (signal → listening) | accepted (250) | delivered | duplicates at next hop | lost | delivered without a 250 | refused (421) / cut |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
bad = False
for n in range(1, runs + 1):
    path = os.path.join(out, f"run{n}.json")
    try:
        r = json.load(open(path))
    except (OSError, ValueError):
        print(f"| {n} | ? | run failed: no result | | | | | | | | |")
        bad = True
        continue
    restart = r.get("restart") or {}
    sink = r.get("sink") or {}
    accepted, delivered = r["accepted"], r["delivered"]
    lost = r["lost"]
    duplicates = sink.get("duplicates", 0)
    print(f"| {n} | SIG{restart.get('signal')} | {restart.get('exit_code')} | {restart.get('drain_ms')} | "
          f"{restart.get('down_ms')} | {accepted} | {delivered} | {duplicates} | {lost} | "
          f"{r['arrived_unacknowledged']} | {r['rejected']} / {r['failed']} |")
    if restart.get("signal") == "TERM" and (duplicates or lost or restart.get("exit_code") != 0):
        bad = True
sys.exit(1 if bad else 0)
PY
