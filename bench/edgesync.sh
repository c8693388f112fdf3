#!/usr/bin/env bash
# EdgeSync benchmark: 10,000 simulated edges (real mutual-TLS gRPC streams, in a
# process of their own) against one real controller process, on loopback.
#   ./bench/edgesync.sh [--edges N] [--changes N]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
server="$(./deploy/postgres-local.sh)"
# 10,000 TLS connections on each side, plus PostgreSQL's: raise the soft fd limit to the hard one.
ulimit -n "$(ulimit -Hn)"
cargo build --release -q -p domainsec-controller -p dsctl -p domainsec-bench
exec ./target/release/edgesync-bench --database-server "$server" --bin-dir target/release "$@"
