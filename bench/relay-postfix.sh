#!/usr/bin/env bash
# Postfix as the reference relay: relay-bench → a private Postfix instance → relay-bench's sink,
# all on loopback, STARTTLS on both hops.
#
#   sudo ./bench/relay-postfix.sh                          # 20,000 messages, 20 connections, 4 KiB
#   sudo MESSAGES=2000 CONCURRENCY=10 ./bench/relay-postfix.sh
#
# Measures what `relay-bench run` reports (messages/s accepted by Postfix and delivered at
# the sink; submit latency = end of DATA → 250; end-to-end latency = sent → arrived at the
# sink) plus Postfix's peak memory: the sum of RSS (and of PSS, which counts shared pages
# once) over the master and all its children, sampled every 200 ms. Prints one JSON object
# on stdout (the bench's, with a "postfix" member added) and a short summary on stderr.
#
# Runs as root on Debian. Installs postfix and openssl with apt if missing (preseeded to
# "No configuration": the system's default instance is never configured, started or
# touched). The instance under test lives in a temp dir under /var/tmp (a disk, so its
# fsyncs cost what they cost; a tmpfs /tmp would flatter it) with its own main.cf,
# master.cf, queue, data directory, log file and ports; `trap` stops it and removes the
# dir on exit (KEEP=1 keeps the dir, e.g. to read its maillog).
#
# Environment: POSTFIX_PORT (2625) SINK_PORT (2626) MESSAGES (20000) CONCURRENCY (20)
#   SIZE (4096) WARMUP (500) TIMEOUT (300s) PROCESS_LIMIT (200: Postfix's per-service
#   process cap) DESTINATION_CONCURRENCY (20: Postfix's default connections to one next
#   hop) TLS_REUSE (yes: reuse TLS connections to the sink; no: Postfix's default, a
#   handshake per delivery) RELAY_BENCH (a relay-bench binary; built with cargo when
#   unset) KEEP.
set -euo pipefail

POSTFIX_PORT="${POSTFIX_PORT:-2625}"
SINK_PORT="${SINK_PORT:-2626}"
MESSAGES="${MESSAGES:-20000}"
CONCURRENCY="${CONCURRENCY:-20}"
SIZE="${SIZE:-4096}"
WARMUP="${WARMUP:-500}"
TIMEOUT="${TIMEOUT:-300s}"
PROCESS_LIMIT="${PROCESS_LIMIT:-200}"
DESTINATION_CONCURRENCY="${DESTINATION_CONCURRENCY:-20}"
TLS_REUSE="${TLS_REUSE:-yes}"

root="$(cd "$(dirname "$0")/.." && pwd)"
say() { echo "relay-postfix: $*" >&2; }
die() { say "$*"; exit 1; }

[[ "$(id -u)" == 0 ]] || die "run as root (Postfix's master must start as root)"

# --- install ---------------------------------------------------------------------------
missing=()
command -v postfix >/dev/null || missing+=(postfix)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- relay-bench -------------------------------------------------------------------------
if [[ -z "${RELAY_BENCH:-}" ]]; then
    (cd "$root" && cargo build --release -q -p domainsec-bench --bin relay-bench)
    RELAY_BENCH="${CARGO_TARGET_DIR:-$root/target}/release/relay-bench"
fi
[[ -x "$RELAY_BENCH" ]] || die "no relay-bench binary at $RELAY_BENCH"

for port in "$POSTFIX_PORT" "$SINK_PORT"; do
    if ss -Hltn "sport = :$port" | grep -q .; then die "port $port is in use"; fi
done

# --- private instance ----------------------------------------------------------------
work="$(mktemp -d /var/tmp/relay-postfix.XXXXXX)"
chmod 755 "$work" # Postfix's unprivileged daemons run as `postfix` below it.
config="$work/etc" queue="$work/spool" data="$work/lib"
mkdir -p "$config" "$queue" "$data"
chown postfix "$data"
sampler=""

cleanup() {
    set +e
    [[ -n "$sampler" ]] && kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null
    if [[ -f "$queue/pid/master.pid" ]]; then
        postfix -c "$config" stop >/dev/null 2>&1 || postfix -c "$config" abort >/dev/null 2>&1
    fi
    if [[ -n "${KEEP:-}" ]]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=relay.bench.invalid -keyout "$config/key.pem" -out "$config/cert.pem" 2>/dev/null
chmod 600 "$config/key.pem"

cat >"$config/main.cf" <<EOF
# A private instance: config, queue, data and log all under $work; started with
# \`postfix -c $config\`, so the system's /etc/postfix instance is not involved.
compatibility_level = 3.6
queue_directory = $queue
data_directory = $data
maillog_file = $work/maillog
maillog_file_prefixes = $work
syslog_name = postfix-bench
myhostname = relay.bench.invalid
mydomain = bench.invalid
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4

# A pure relay: nothing is local, everything from 127.0.0.0/8 goes to the sink.
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 no local delivery on the bench relay
alias_maps =
alias_database =
relay_domains =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relayhost = [127.0.0.1]:$SINK_PORT

# No DNS anywhere: the next hop is an address, the client's name is not looked up.
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no

# STARTTLS offered to clients, used opportunistically towards the sink.
smtpd_tls_security_level = may
smtpd_tls_cert_file = $config/cert.pem
smtpd_tls_key_file = $config/key.pem
smtpd_tls_session_cache_database = btree:\${data_directory}/smtpd_scache
smtp_tls_security_level = may
smtp_tls_session_cache_database = btree:\${data_directory}/smtp_scache
# Postfix caches only plaintext connections unless this is on (3.4+): then tlsproxy holds
# the TLS state, scache the connection, and one sink connection carries many deliveries.
# Without it every delivery is a new TCP connection and TLS handshake to the sink.
smtp_tls_connection_reuse = $TLS_REUSE

# Durability: Postfix fsyncs every queue file before it answers 250 to DATA. That is its
# default and cannot be turned off in main.cf; it is kept, and measured.

# Enough processes for the load: smtpd per client connection, smtp per sink connection.
default_process_limit = $PROCESS_LIMIT
default_destination_concurrency_limit = $DESTINATION_CONCURRENCY
# in_flow_delay (1s) stays at its default: Postfix's own back-pressure from the queue
# manager to smtpd, part of how it behaves under load.

# Irrelevant to a relay.
biff = no
smtpd_delay_reject = no
append_dot_mydomain = no
readme_directory = no
EOF

# Every service unchrooted (the 5th column): the instance needs no copy of /etc in a jail.
cat >"$config/master.cf" <<EOF
127.0.0.1:$POSTFIX_PORT inet n - n - - smtpd
cleanup   unix  n - n -     0 cleanup
qmgr      unix  n - n 300   1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -     - trivial-rewrite
bounce    unix  - - n -     0 bounce
defer     unix  - - n -     0 bounce
trace     unix  - - n -     0 bounce
verify    unix  - - n -     1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -     - proxymap
smtp      unix  - - n -     - smtp
relay     unix  - - n -     - smtp
showq     unix  n - n -     - showq
error     unix  - - n -     - error
retry     unix  - - n -     - error
discard   unix  - - n -     - discard
anvil     unix  - - n -     1 anvil
scache    unix  - - n -     1 scache
postlog   unix-dgram n - n - 1 postlogd
tlsproxy  unix  - - n -     0 tlsproxy
EOF

postfix -c "$config" check
postfix -c "$config" start >/dev/null 2>&1 || { cat "$work/maillog" >&2 2>/dev/null; die "postfix did not start"; }
master="$(tr -d ' ' <"$queue/pid/master.pid")"
say "postfix $(postconf -c "$config" -h mail_version) running as pid $master in $work on 127.0.0.1:$POSTFIX_PORT"

# --- memory sampler --------------------------------------------------------------------
# Peak of the sums over the master and its children: RSS (shared pages counted in every
# process) and PSS (shared pages split between them).
peaks="$work/peaks"
echo "0 0 0" >"$peaks"
(
    peak_rss=0 peak_pss=0 peak_processes=0
    while :; do
        pids="$master $(pgrep -P "$master" | tr '\n' ' ')"
        read -r rss pss processes < <(
            for pid in $pids; do cat "/proc/$pid/smaps_rollup" 2>/dev/null; done |
                awk '/^Rss:/ { rss += $2; n++ } /^Pss:/ { pss += $2 } END { print rss + 0, pss + 0, n + 0 }'
        )
        ((rss > peak_rss)) && peak_rss=$rss
        ((pss > peak_pss)) && peak_pss=$pss
        ((processes > peak_processes)) && peak_processes=$processes
        echo "$peak_rss $peak_pss $peak_processes" >"$peaks.new" && mv "$peaks.new" "$peaks"
        sleep 0.2
    done
) &
sampler=$!

# --- run -------------------------------------------------------------------------------
ulimit -n "$(ulimit -Hn)"
status=0
result="$("$RELAY_BENCH" run --target "127.0.0.1:$POSTFIX_PORT" --sink-listen "127.0.0.1:$SINK_PORT" --starttls \
    --messages "$MESSAGES" --concurrency "$CONCURRENCY" --size "$SIZE" --warmup "$WARMUP" \
    --timeout "$TIMEOUT" --json)" || status=$?
sleep 0.5 # one more sample after the last delivery
kill "$sampler" && wait "$sampler" 2>/dev/null || true
sampler=""
read -r peak_rss peak_pss peak_processes <"$peaks"

[[ -n "$result" ]] || die "relay-bench produced no result (exit $status)"
sent="$(grep -c 'status=sent' "$work/maillog" || true)"
deferred="$(grep -c 'status=deferred' "$work/maillog" || true)"
postfix_json="\"postfix\":{\"version\":\"$(postconf -c "$config" -h mail_version)\",\"peak_rss_kib\":$peak_rss,\
\"peak_pss_kib\":$peak_pss,\"peak_processes\":$peak_processes,\"log_sent\":$sent,\"log_deferred\":$deferred}"
echo "${result%\}},$postfix_json}"
say "Postfix peak memory: RSS sum $((peak_rss / 1024)) MiB, PSS sum $((peak_pss / 1024)) MiB, up to $peak_processes processes"
say "maillog: $sent sent, $deferred deferred (warm-up included)"
exit "$status"
