#!/usr/bin/env bash
# DomainSec quickstart: the white paper's walkthrough on loopback. Two organizations,
# each with its own database and controller: Contoso (edges mail1.contoso.com and
# mail2.mail.contoso.com) and Woodgrove Bank (edge mail.woodgrovebank.com). A test CA
# that both trust (the paper's shared third-party CA) signs their edges' certificate
# requests and serves its CRL over HTTP. Everything is configured with dsctl as the
# paper configures Exchange; then mail flows both ways Domain Secured, and a revoked
# partner certificate is refused.
#
#   ./deploy/quickstart.sh          build, start, configure, send mail, and leave it running
#   ./deploy/quickstart.sh stop     stop everything it started and remove its files
#
# Everything lives in .quickstart/ in the project; PostgreSQL is found or started
# by deploy/postgres-local.sh (the databases it uses are dropped on stop).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="$root/.quickstart"
bin="${CARGO_TARGET_DIR:-$root/target}/release"
contoso_admin="${DOMAINSEC_ADMIN_PORT:-50052}"
contoso_sync="${DOMAINSEC_EDGE_PORT:-50051}"
woodgrove_admin=50062
woodgrove_sync=50061
crl_port=8089
databases="domainsec_contoso domainsec_woodgrove"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() {
  local line='$' arg
  for arg in "$@"; do
    arg="${arg#"$root"/}"
    case "$arg" in
      *[[:space:]\*\,\<]* | '') line+=" '$arg'" ;;
      *) line+=" $arg" ;;
    esac
  done
  printf '%s\n' "$line"
  "$@"
}

server_url() { echo "${1%/*}/$2"; }

stop_pid() {  # stop_pid FILE NAME
  [ -f "$1" ] || return 0
  pid="$(cat "$1")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "stopped $2 (pid $pid)"
  fi
}

stop() {
  for pidfile in "$work"/*.pid; do
    [ -e "$pidfile" ] && stop_pid "$pidfile" "$(basename "$pidfile" .pid)"
  done
  if [ -f "$work/database-url" ]; then
    for database in $databases; do
      psql "$(cat "$work/database-url")" -qc "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
    done
    echo "dropped databases $databases"
  fi
  if [ -f "$work/started-postgres" ]; then "$root/deploy/postgres-local.sh" stop; fi
  rm -rf "$work"
  echo "quickstart stopped; nothing is left running"
}

if [ "${1:-}" = stop ]; then stop; exit 0; fi

if ls "$work"/*.pid >/dev/null 2>&1; then
  echo "The quickstart is already running. Stop it first: ./deploy/quickstart.sh stop"
  exit 1
fi
rm -rf "$work"
mkdir -p "$work"

wait_for() {  # wait_for SECONDS WHAT COMMAND...
  local deadline=$((SECONDS + $1)) what="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "gave up waiting for $what"; return 1; fi
    sleep 0.2
  done
}

step "PostgreSQL"
had_server=yes
(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null || had_server=no
server="$("$root/deploy/postgres-local.sh")"
[ "$had_server" = no ] && [ -z "${DATABASE_URL:-}" ] && touch "$work/started-postgres"
echo "$server" > "$work/database-url"
for database in $databases; do
  psql "$server" -qc "DROP DATABASE IF EXISTS $database" -c "CREATE DATABASE $database" >/dev/null
done
echo "databases $databases on $server"

step "Build (release)"
(cd "$root" && cargo build --release --bins)

step "A test CA both organizations trust (the paper's third-party CA), its CRL served on 127.0.0.1:$crl_port"
show "$bin/domainsec-testca" init --dir "$work/ca"
"$bin/domainsec-testca" serve --dir "$work/ca" --listen "127.0.0.1:$crl_port" --next-update 15s > "$work/crl.log" 2>&1 &
echo $! > "$work/crl-server.pid"
wait_for 10 "the CRL server" bash -c "exec 3<>/dev/tcp/127.0.0.1/$crl_port"

# start_org NAME ORG ADMIN_PORT SYNC_PORT: a controller with its own database and credentials.
start_org() {
  local name="$1" org="$2" admin="$3" sync="$4"
  local url; url="$(server_url "$server" "domainsec_$name")"
  show "$bin/domainsec-controller" init --org "$org" --database-url "$url" --state-dir "$work/$name/state" \
    --out-admin "$work/$name/admin.toml" --controller "127.0.0.1:$admin"
  "$bin/domainsec-controller" serve --database-url "$url" --state-dir "$work/$name/state" \
    --admin-listen "127.0.0.1:$admin" --edge-listen "127.0.0.1:$sync" > "$work/$name/controller.log" 2>&1 &
  echo $! > "$work/controller-$name.pid"
  wait_for 30 "the $org controller" "$bin/dsctl" --credentials "$work/$name/admin.toml" whoami
  echo "$org: controller pid $(cat "$work/controller-$name.pid"), admin API 127.0.0.1:$admin, edge port 127.0.0.1:$sync"
}
contoso() { show "$bin/dsctl" --credentials "$work/contoso/admin.toml" "$@"; }
woodgrove() { show "$bin/dsctl" --credentials "$work/woodgrove/admin.toml" "$@"; }

step "Contoso: controller, accepted domains, edges, Domain Security (Set-TransportConfig, connectors)"
mkdir -p "$work/contoso" "$work/woodgrove"
start_org contoso Contoso "$contoso_admin" "$contoso_sync"
contoso accepted-domain add contoso.com
contoso accepted-domain add mail.contoso.com
contoso edge add mail1 --fqdn mail1.contoso.com
contoso edge add mail2 --fqdn mail2.mail.contoso.com
contoso transport-config set --tls-send-domain-secure-list woodgrovebank.com --tls-receive-domain-secure-list woodgrovebank.com
contoso send-connector new Internet --address-spaces '*' --dns-routing --source-edges mail1,mail2 \
  --domain-secure-enabled true --protocol-logging-level verbose
for pair in mail1:2525 mail2:2526; do
  contoso receive-connector new Inet --edge "${pair%%:*}" --bindings "127.0.0.1:${pair##*:}" \
    --domain-secure-enabled true --auth-mechanism tls --permission-groups anonymous-users,partners \
    --protocol-logging-level verbose
done
contoso receive-connector new FromHub --edge mail1 --bindings 127.0.0.1:2527 --remote-ip-ranges 127.0.0.1 \
  --permission-groups exchange-servers --auth-mechanism tls

step "Woodgrove Bank: the same on its side, for contoso.com"
start_org woodgrove "Woodgrove Bank" "$woodgrove_admin" "$woodgrove_sync"
woodgrove accepted-domain add woodgrovebank.com
woodgrove edge add mail --fqdn mail.woodgrovebank.com
woodgrove transport-config set --tls-send-domain-secure-list contoso.com --tls-receive-domain-secure-list contoso.com
woodgrove send-connector new Internet --address-spaces '*' --dns-routing --source-edges mail \
  --domain-secure-enabled true --protocol-logging-level verbose
woodgrove receive-connector new Inet --edge mail --bindings 127.0.0.1:2535 --domain-secure-enabled true \
  --auth-mechanism tls --permission-groups anonymous-users,partners --protocol-logging-level verbose
woodgrove receive-connector new FromHub --edge mail --bindings 127.0.0.1:2537 --remote-ip-ranges 127.0.0.1 \
  --permission-groups exchange-servers --auth-mechanism tls

step "Subscribe and run the edges (no DNS here: each edge.toml has static MX records)"
cat > "$work/contoso/edge.toml" <<'TOML'
[dns]
static_only = true
[dns.mx]
"woodgrovebank.com" = [{ preference = 10, exchange = "mail.woodgrovebank.com" }]
[dns.hosts]
"mail.woodgrovebank.com" = ["127.0.0.1:2535"]
TOML
cat > "$work/woodgrove/edge.toml" <<'TOML'
[dns]
static_only = true
[dns.mx]
"contoso.com" = [{ preference = 10, exchange = "mail1.contoso.com" }, { preference = 20, exchange = "mail2.mail.contoso.com" }]
[dns.hosts]
"mail1.contoso.com" = ["127.0.0.1:2525"]
"mail2.mail.contoso.com" = ["127.0.0.1:2526"]
TOML
metrics_port=9325
for spec in contoso:mail1 contoso:mail2 woodgrove:mail; do
  org="${spec%%:*}"; edge="${spec#*:}"
  show "$bin/dsctl" --credentials "$work/$org/admin.toml" edge new-subscription "$edge" --out "$work/$org/$edge.subscription"
  show "$bin/domainsec-edge" subscribe --file "$work/$org/$edge.subscription" --data-dir "$work/$org/edges/$edge"
  "$bin/domainsec-edge" run --data-dir "$work/$org/edges/$edge" --config "$work/$org/edge.toml" \
    --heartbeat-interval 2s --metrics-listen "127.0.0.1:$metrics_port" > "$work/$org/edge-$edge.log" 2>&1 &
  echo $! > "$work/edge-$org-$edge.pid"
  echo "edge $edge ($org) running: pid $!, log $work/$org/edge-$edge.log, metrics http://127.0.0.1:$metrics_port/"
  metrics_port=$((metrics_port + 1))
done

# dsctl edge test-sync exits 0 only when every edge runs the current configuration (3 otherwise).
in_sync() { "$bin/dsctl" --credentials "$1" edge test-sync > /dev/null 2>&1; }
wait_for 30 "Contoso's edges to sync" in_sync "$work/contoso/admin.toml"
wait_for 30 "Woodgrove's edge to sync" in_sync "$work/woodgrove/admin.toml"
contoso edge test-sync

step "Certificates: a request on each edge (New-ExchangeCertificate -GenerateRequest), signed by the test CA"
for spec in contoso:mail1:mail1.contoso.com:mail.contoso.com contoso:mail2:mail2.mail.contoso.com:mail.contoso.com \
    woodgrove:mail:mail.woodgrovebank.com:mail.woodgrovebank.com; do
  IFS=: read -r org edge fqdn name <<< "$spec"
  show "$bin/dsctl" --credentials "$work/$org/admin.toml" cert new --edge "$edge" --subject-name "C=US, O=$org, CN=$fqdn" \
    --domain-name "$name" --friendly-name "Internet certificate" --generate-request --path "$work/$org/$edge.req" --enable smtp
  show "$bin/domainsec-testca" sign --dir "$work/ca" --csr "$work/$org/$edge.req" --out "$work/$org/$edge.cer" \
    --crl-url "http://127.0.0.1:$crl_port/ca.crl"
  show "$bin/dsctl" --credentials "$work/$org/admin.toml" cert import --edge "$edge" --path "$work/$org/$edge.cer"
done
echo "Both organizations trust the third-party CA's root:"
contoso trusted-root add --path "$work/ca/ca.pem"
woodgrove trusted-root add --path "$work/ca/ca.pem"
wait_for 30 "Contoso's edges to sync" in_sync "$work/contoso/admin.toml"
wait_for 30 "Woodgrove's edge to sync" in_sync "$work/woodgrove/admin.toml"
thumbprint="$("$bin/dsctl" --credentials "$work/contoso/admin.toml" -o json cert get --edge mail1 \
  | sed -n 's/.*"thumbprint": "\([0-9A-F]*\)".*/\1/p' | head -n 1)"
contoso cert verify --edge mail1 --thumbprint "$thumbprint"

# A minimal SMTP client in bash, so the quickstart needs no mail tools: it prints both sides.
smtp_session() {  # smtp_session PORT COMMAND... (the argument after DATA is the message)
  local port="$1"; shift
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  smtp_reply
  while [ $# -gt 0 ]; do
    printf 'C: %s\n' "$1"
    printf '%s\r\n' "$1" >&3
    if [ "$1" = DATA ]; then
      smtp_reply; shift
      printf 'C: (message, %s bytes)\n' "${#1}"
      printf '%s\r\n.\r\n' "$1" >&3
    fi
    smtp_reply; shift
  done
  exec 3>&-
}
smtp_reply() {
  local line
  while IFS= read -r -t 10 line <&3; do
    printf 'S: %s\n' "${line%$'\r'}"
    [ "${line:3:1}" = "-" ] || break
  done
}
wait_for_mail() {  # wait_for_mail DIR: the newest file, once one arrives
  local deadline=$((SECONDS + 30))
  until [ -n "$(ls -A "$1" 2>/dev/null)" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "no mail arrived in $1"; return 1; fi
    sleep 0.2
  done
}

step "Mail from Contoso to Woodgrove Bank: Contoso's server submits to mail1 (FromHub); mail1 delivers over mutual TLS"
smtp_session 2527 "EHLO hub.contoso.com" "MAIL FROM:<ted@contoso.com>" "RCPT TO:<kim@woodgrovebank.com>" DATA \
  $'From: ted@contoso.com\r\nTo: kim@woodgrovebank.com\r\nSubject: Q3 figures\r\n\r\nHello Kim.' QUIT
inbox="$work/woodgrove/edges/mail/maildir/woodgrovebank.com/kim/new"
wait_for_mail "$inbox"
echo "arrived at Woodgrove Bank, marked Domain Secured:"
show ls "$inbox"
sed -n '1,6p' "$inbox"/*

step "Mail from Woodgrove Bank to Contoso, the other way"
smtp_session 2537 "EHLO hub.woodgrovebank.com" "MAIL FROM:<kim@woodgrovebank.com>" "RCPT TO:<ted@contoso.com>" DATA \
  $'From: kim@woodgrovebank.com\r\nTo: ted@contoso.com\r\nSubject: Re: Q3 figures\r\n\r\nThanks, Ted.' QUIT
inbox="$work/contoso/edges/mail1/maildir/contoso.com/ted/new"
wait_for_mail "$inbox"
echo "arrived at Contoso (mail1, the MX with preference 10), marked Domain Secured:"
sed -n '1,6p' "$inbox"/*

step "Counters and protocol logs"
sleep 3  # one heartbeat (every 2 s here) carries the counters to the controllers
contoso fleet status
woodgrove fleet status
contoso counters --edge mail1
echo "mail1's Send protocol log, the TLS part of the session (the paper's samples show the same lines):"
contoso protocol-log --edge mail1 --log send --limit 60 | grep -E 'STARTTLS|,\*,' | head -n 20

step "A failure on purpose: the test CA revokes Woodgrove Bank's certificate"
show "$bin/domainsec-testca" revoke --dir "$work/ca" --cert "$work/woodgrove/mail.cer"
echo "(CRLs are valid 15 s here: waiting for the edges' cached copies to lapse)"
sleep 16
smtp_session 2527 "EHLO hub.contoso.com" "MAIL FROM:<ted@contoso.com>" "RCPT TO:<kim@woodgrovebank.com>" DATA \
  $'From: ted@contoso.com\r\nTo: kim@woodgrovebank.com\r\nSubject: Q4 plans\r\n\r\nNot sent in plain text, ever.' QUIT
revoked() { "$bin/dsctl" --credentials "$work/contoso/admin.toml" queue list --edge mail1 | grep -q revoked; }
wait_for 30 "the refusal" revoked
echo "mail1 refused to deliver (the message stays queued for retry; never downgraded):"
contoso queue list --edge mail1
sleep 3
contoso counters --edge mail1

cat <<EOT

Two organizations are running on loopback:
  Contoso:        export DSCTL_CREDENTIALS=$work/contoso/admin.toml     (edges mail1, mail2)
  Woodgrove Bank: export DSCTL_CREDENTIALS=$work/woodgrove/admin.toml   (edge mail)
  $bin/dsctl fleet status
  $bin/dsctl counters --edge mail1
  $bin/dsctl protocol-log --edge mail1 --log send
  $bin/dsctl queue list --edge mail1
  curl -s http://127.0.0.1:9325/        # mail1's Prometheus metrics
Submit mail as the organizations' servers: Contoso 127.0.0.1:2527, Woodgrove Bank 127.0.0.1:2537.
Maildirs: $work/*/edges/*/maildir/
Stop everything: ./deploy/quickstart.sh stop
EOT
