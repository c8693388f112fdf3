#!/usr/bin/env bash
# Large secure-domain lists (#16 target 5): `dsctl config apply` of documents whose
# TLSSendDomainSecureList holds N entries, against a real controller and PostgreSQL, timed
# wall-clock and in the controller's CPU time (/proc/PID/stat utime+stime).
#
#   ./bench/large-lists.sh                  # N = 16000 32000 64000 100000, 3 runs each
#   SIZES="100000" RUNS=5 ./bench/large-lists.sh
#
# Each run replaces the list (the previous run's entries are all removed, N new ones added).
# The controller is pinned to core 0, dsctl and PostgreSQL's client to core 1.
set -euo pipefail
SIZES="${SIZES:-16000 32000 64000 100000}"
RUNS="${RUNS:-3}"
ADMIN_PORT="${ADMIN_PORT:-50082}"
SYNC_PORT="${SYNC_PORT:-50081}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-$root/target}/release"
work="$(mktemp -d)"
database="domainsec_large_lists_bench"
pid=""
cleanup() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
    wait 2>/dev/null || true
    [[ -n "${server:-}" ]] && psql "$server" -qc "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && cargo build --release -q --bins)
server="$("$root/deploy/postgres-local.sh")"
psql "$server" -qc "DROP DATABASE IF EXISTS $database" -c "CREATE DATABASE $database" >/dev/null
url="${server%/*}/$database"
"$bin/domainsec-controller" init --org Contoso --database-url "$url" --state-dir "$work/state" \
    --out-admin "$work/admin.toml" --controller "127.0.0.1:$ADMIN_PORT" >/dev/null
taskset -c 0 "$bin/domainsec-controller" serve --database-url "$url" --state-dir "$work/state" \
    --admin-listen "127.0.0.1:$ADMIN_PORT" --edge-listen "127.0.0.1:$SYNC_PORT" >"$work/controller.log" 2>&1 &
pid=$!
dsctl() { taskset -c 1 "$bin/dsctl" --credentials "$work/admin.toml" "$@"; }
for _ in $(seq 1 150); do dsctl whoami >/dev/null 2>&1 && break; sleep 0.2; done
dsctl accepted-domain add contoso.com >/dev/null
dsctl config export >"$work/base.yaml"

cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$pid/stat"; }
echo "| entries | run | apply wall ms | controller CPU ms | CPU µs per entry |"
echo "| --- | --- | --- | --- | --- |"
generation=0
for size in $SIZES; do
    for run in $(seq 1 "$RUNS"); do
        generation=$((generation + 1))
        python3 - "$work/base.yaml" "$work/doc.yaml" "$size" "$generation" <<'PY'
import sys
base, out, size, generation = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lines = open(base).read().splitlines()
entries = "\n".join(f"  - p{n}.g{generation}.example" for n in range(size))
result, skip = [], False
for line in lines:
    if line.strip().startswith("tls_send_domain_secure_list:"):
        indent = line[: len(line) - len(line.lstrip())]
        result.append(f"{indent}tls_send_domain_secure_list:")
        result.append("\n".join(indent + e for e in entries.splitlines()))
        skip = True
        continue
    if skip and (line.startswith(" " * (len(indent) + 1)) or line.lstrip().startswith("- ")):
        continue
    skip = False
    result.append(line)
open(out, "w").write("\n".join(result) + "\n")
PY
        before=$(cpu_ms)
        start=$(date +%s%N)
        dsctl config apply -f "$work/doc.yaml" >/dev/null
        end=$(date +%s%N)
        after=$(cpu_ms)
        cpu=$((after - before))
        echo "| $size | $run | $(( (end - start) / 1000000 )) | $cpu | $(python3 -c "print(f'{$cpu * 1000 / $size:.1f}')") |"
    done
done
