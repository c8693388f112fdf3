#!/usr/bin/env bash
# Runs every fuzz target in turn, SECONDS_PER_TARGET seconds each (default 30),
# without a sanitizer (works on the stable toolchain), one process at a time.
#
#   fuzz/run.sh            # 30 s per target
#   fuzz/run.sh 600        # 10 min per target
#   FUZZ_TARGETS="smtp_command header_scrub" fuzz/run.sh 60
#
# Builds once, then runs the built binaries directly (a source change during the
# run does not trigger a rebuild). Prints the executions per target and exits
# non-zero if any target crashed, printing the path of the crash input
# (fuzz/artifacts/TARGET/crash-*). Reproduce one with
#   cargo fuzz run -s none TARGET fuzz/artifacts/TARGET/crash-…
#
# Needs no network: the build runs offline. Without cargo-fuzz, or without the
# fuzz crate's dependencies in the local cargo cache, it says so and exits 0,
# unless FUZZ_INSTALL=1 (then it installs cargo-fuzz and fetches what is missing).
#
# Environment:
#   FUZZ_TARGETS   space-separated targets (default: all, from `cargo fuzz list`)
#   FUZZ_INSTALL=1 install cargo-fuzz / fetch dependencies when missing
#   FUZZ_WORK_DIR  keep the grown corpora and logs here (default: a temporary
#                  directory, removed at the end; the committed seeds in
#                  fuzz/corpus/ are only read, never added to)
#   FUZZ_ARGS      extra libFuzzer flags, e.g. "-seed=1 -max_len=8192"
set -uo pipefail

seconds=${1:-30}
case $seconds in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac
fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$fuzz_dir"
# The fuzz builds (release, coverage-instrumented) live in fuzz/target whatever the
# caller's CARGO_TARGET_DIR says: they must not mix with the workspace's, and the
# binaries are run from there below.
export CARGO_TARGET_DIR="$fuzz_dir/target"

if ! cargo fuzz --version >/dev/null 2>&1; then
    if [ "${FUZZ_INSTALL:-0}" != 1 ]; then
        echo "cargo fuzz not available; skipping (FUZZ_INSTALL=1 installs it)"
        exit 0
    fi
    cargo install cargo-fuzz --locked || exit 1
fi

host=$(rustc -vV | sed -n 's/^host: //p')
offline=true
if ! CARGO_NET_OFFLINE=true cargo metadata --format-version 1 --filter-platform "$host" >/dev/null 2>&1; then
    if [ "${FUZZ_INSTALL:-0}" != 1 ]; then
        echo "the fuzz crate's dependencies are not in the local cargo cache; skipping (FUZZ_INSTALL=1 fetches them)"
        exit 0
    fi
    offline=false
fi

targets=${FUZZ_TARGETS:-$(cargo fuzz list)}
echo "== building ${targets//$'\n'/ } (sanitizer none)"
CARGO_NET_OFFLINE=$offline cargo fuzz build -s none || { echo "FAILED: the fuzz targets do not build"; exit 1; }
bin_dir="target/$host/release"

work=${FUZZ_WORK_DIR:-}
if [ -z "$work" ]; then
    base=/tmp
    [ -d /dev/shm ] && base=/dev/shm
    work=$(mktemp -d "$base/domainsec-fuzz-run.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/scratch"
export DOMAINSEC_FUZZ_SCRATCH="$work/scratch"

failed=()
summary=()
for target in $targets; do
    dict=()
    case $target in
        smtp_* | inbound_session) dict=("-dict=dict/smtp.dict") ;;
        header_scrub) dict=("-dict=dict/header.dict") ;;
    esac
    mkdir -p "$work/corpus/$target" "artifacts/$target" "corpus/$target"
    log="$work/$target.log"
    echo "== $target: ${seconds}s"
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    "$bin_dir/$target" "$work/corpus/$target" "corpus/$target" \
        -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="artifacts/$target/" "${dict[@]}" ${FUZZ_ARGS:-} >"$log" 2>&1
    status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$log" | tail -n 1)
    [ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
    runs=${runs:-?}
    if [ "$status" -eq 0 ]; then
        echo "   ok: $runs executions"
        summary+=("$(printf '%-18s ok       %12s executions' "$target" "$runs")")
    else
        failed+=("$target")
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        echo "   CRASHED after $runs executions (exit $status)"
        grep -E -m 5 -A 4 "panicked at|ERROR: libFuzzer|==[0-9]+== ERROR" "$log" | sed 's/^/   | /'
        echo "   crash input: ${artifact:-(none written; see the log)}"
        summary+=("$(printf '%-18s CRASHED  %12s executions  %s' "$target" "$runs" "${artifact:-}")")
    fi
    rm -rf "${work:?}/scratch/"*
done

echo
echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
