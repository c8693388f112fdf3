#!/usr/bin/env bash
# EdgeSync benchmark (#16): simulated edges (real mutual-TLS gRPC streams, in a process
# of their own) against real controller processes on loopback. With two or more cores
# the controllers run on core 0 and the simulator, dsctl and PostgreSQL on core 1, and
# each change reports the controllers' CPU time.
#
#   ./bench/edgesync.sh                                   # 10,000 edges, one controller
#   ./bench/edgesync.sh --outage-seconds 60               # ... and a 60 s database outage
#   ./bench/edgesync.sh --replicas 2                      # two replicas, then kill -9 of one
#   ./bench/edgesync.sh --edges 19000                     # the most this machine's fd limit allows
#   RUNS=3 ./bench/edgesync.sh ...                        # the same run three times in a row
#
# Options: --edges N, --changes N, --replicas 1|2, --outage-seconds S, --no-pin.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
server="$(./deploy/postgres-local.sh)"
# One TLS connection per edge on each side, plus PostgreSQL's: the soft fd limit up to the
# hard one (each process holds one descriptor per edge; the hard limit bounds the fleet).
ulimit -n "$(ulimit -Hn)"
cargo build --release -q -p domainsec-controller -p dsctl -p domainsec-bench
for run in $(seq 1 "${RUNS:-1}"); do
    [ "${RUNS:-1}" -gt 1 ] && echo "#### run $run of $RUNS"
    ./target/release/edgesync-bench --database-server "$server" --bin-dir target/release "$@"
done
