#!/usr/bin/env bash
# DomainSec quickstart: a controller for "Contoso" and its two edges (mail1 and
# mail2, as in the white paper) on loopback, configured with dsctl the way the
# paper's walkthrough configures Exchange, with the edges kept in sync.
#
#   ./deploy/quickstart.sh          build, start, configure, and leave it running
#   ./deploy/quickstart.sh stop     stop everything it started and remove its files
#
# Everything lives in .quickstart/ in the project; PostgreSQL is found or started
# by deploy/postgres-local.sh (the database it uses is dropped on stop).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="$root/.quickstart"
bin="${CARGO_TARGET_DIR:-$root/target}/release"
admin_port="${DOMAINSEC_ADMIN_PORT:-50052}"
edge_port="${DOMAINSEC_EDGE_PORT:-50051}"
database="domainsec_quickstart"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Prints a command (paths relative to the project, arguments with spaces quoted), then runs it.
show() {
  local line='$' arg
  for arg in "$@"; do
    arg="${arg#"$root"/}"
    case "$arg" in
      *[[:space:]\*\,]* | '') line+=" '$arg'" ;;
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
  for pidfile in "$work"/edge-*.pid; do
    [ -e "$pidfile" ] && stop_pid "$pidfile" "edge $(basename "$pidfile" .pid | sed 's/^edge-//')"
  done
  stop_pid "$work/controller.pid" "the controller"
  if [ -f "$work/database-url" ]; then
    psql "$(cat "$work/database-url")" -qc "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
    echo "dropped database $database"
  fi
  if [ -f "$work/started-postgres" ]; then "$root/deploy/postgres-local.sh" stop; fi
  rm -rf "$work"
  echo "quickstart stopped; nothing is left running"
}

if [ "${1:-}" = stop ]; then stop; exit 0; fi

if [ -f "$work/controller.pid" ] && kill -0 "$(cat "$work/controller.pid")" 2>/dev/null; then
  echo "The quickstart is already running. Stop it first: ./deploy/quickstart.sh stop"
  exit 1
fi
rm -rf "$work"
mkdir -p "$work"

step "PostgreSQL"
had_server=yes
(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null || had_server=no
server="$("$root/deploy/postgres-local.sh")"
[ "$had_server" = no ] && [ -z "${DATABASE_URL:-}" ] && touch "$work/started-postgres"
url="$(server_url "$server" "$database")"
echo "$server" > "$work/database-url"
psql "$server" -qc "DROP DATABASE IF EXISTS $database" -c "CREATE DATABASE $database" >/dev/null

step "Build (release)"
(cd "$root" && cargo build --release --bins)

step "Create the organization (domainsec-controller init)"
show "$bin/domainsec-controller" init --org Contoso --database-url "$url" \
  --state-dir "$work/state" --out-admin "$work/admin.toml" --controller "127.0.0.1:$admin_port"

step "Start the controller (domainsec-controller serve)"
"$bin/domainsec-controller" serve --database-url "$url" --state-dir "$work/state" \
  --admin-listen "127.0.0.1:$admin_port" --edge-listen "127.0.0.1:$edge_port" > "$work/controller.log" 2>&1 &
echo $! > "$work/controller.pid"
export DSCTL_CREDENTIALS="$work/admin.toml"
deadline=$((SECONDS + 30))
until "$bin/dsctl" whoami >/dev/null 2>&1; do
  if ! kill -0 "$(cat "$work/controller.pid")" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    echo "the controller did not start; its log:"; cat "$work/controller.log"; exit 1
  fi
  sleep 0.2
done
echo "controller pid $(cat "$work/controller.pid"), admin API on 127.0.0.1:$admin_port, edge port on 127.0.0.1:$edge_port, log $work/controller.log"
dsctl() { show "$bin/dsctl" "$@"; }

step "Accepted domains and edges"
dsctl accepted-domain add contoso.com
dsctl accepted-domain add mail.contoso.com
dsctl edge add mail1 --fqdn mail1.contoso.com
dsctl edge add mail2 --fqdn mail2.mail.contoso.com

step "Outbound Domain Security: Set-TransportConfig -TLSSendDomainSecureList woodgrovebank.com"
dsctl transport-config set --tls-send-domain-secure-list woodgrovebank.com
dsctl send-connector new Internet --address-spaces '*' --dns-routing --source-edges mail1,mail2 \
  --domain-secure-enabled true --protocol-logging-level verbose

step "Inbound Domain Security: Set-TransportConfig -TLSReceiveDomainSecureList woodgrovebank.com"
dsctl transport-config set --tls-receive-domain-secure-list woodgrovebank.com
# Loopback ports here; a real edge binds 0.0.0.0:25.
for pair in mail1:2525 mail2:2526; do
  edge="${pair%%:*}"
  dsctl receive-connector new Inet --edge "$edge" --bindings "127.0.0.1:${pair##*:}" \
    --domain-secure-enabled true --auth-mechanism tls --permission-groups anonymous-users,partners \
    --protocol-logging-level verbose
done

step "Read it back"
dsctl transport-config get
dsctl send-connector list
dsctl receive-connector list

step "Subscribe the edges (New-EdgeSubscription) and run them"
for edge in mail1 mail2; do
  dsctl edge new-subscription "$edge" --out "$work/$edge.subscription"
  show "$bin/domainsec-edge" subscribe --file "$work/$edge.subscription" --data-dir "$work/edges/$edge"
  "$bin/domainsec-edge" run --data-dir "$work/edges/$edge" --heartbeat-interval 5s > "$work/edge-$edge.log" 2>&1 &
  echo $! > "$work/edge-$edge.pid"
  echo "edge $edge running (pid $!, log $work/edge-$edge.log)"
done

# Waits until every edge runs the current configuration (Test-EdgeSynchronization).
wait_in_sync() {
  local deadline=$((SECONDS + 30))
  until "$bin/dsctl" -o json edge test-sync | grep -q '"in_sync": true' \
      && ! "$bin/dsctl" -o json edge test-sync | grep -q '"in_sync": false'; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "the edges did not sync within 30 s"; return 1; fi
    sleep 0.2
  done
}
wait_in_sync
dsctl edge test-sync

step "Change the partner list; EdgeSync pushes it to both edges"
dsctl transport-config set --add-tls-send-domain-secure fabrikam.com --add-tls-receive-domain-secure fabrikam.com
wait_in_sync
dsctl fleet status
dsctl edge sync --all

step "Certificates: a request on each edge (New-ExchangeCertificate -GenerateRequest), signed by a test CA"
"$bin/domainsec-testca" init --dir "$work/ca"
for pair in mail1:mail1.contoso.com mail2:mail2.mail.contoso.com; do
  edge="${pair%%:*}"; fqdn="${pair#*:}"
  dsctl cert new --edge "$edge" --subject-name "C=US, O=contoso corp, CN=$fqdn" --domain-name mail.contoso.com \
    --friendly-name "Internet certificate" --generate-request --path "$work/$edge.req" --enable smtp
  show "$bin/domainsec-testca" sign --dir "$work/ca" --csr "$work/$edge.req" --out "$work/$edge.cer"
  dsctl cert import --edge "$edge" --path "$work/$edge.cer"
done
dsctl cert get

step "certutil -verify on the edge: first untrusted, then with the CA as a trusted root"
thumbprint="$("$bin/dsctl" -o json cert get --edge mail1 | sed -n 's/.*"thumbprint": "\([0-9A-F]*\)".*/\1/p' | head -n 1)"
dsctl cert verify --edge mail1 --thumbprint "$thumbprint" || true
dsctl trusted-root add --path "$work/ca/ca.pem"
wait_in_sync
dsctl cert verify --edge mail1 --thumbprint "$thumbprint"

step "Mail: an SMTP session into mail1's Inet connector (127.0.0.1:2525), as a sending server would"
# A minimal client in bash, so the quickstart needs no mail tools: it prints both sides.
smtp_session() {  # smtp_session PORT COMMAND... (the DATA body is the argument after DATA)
  local port="$1"; shift
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  smtp_reply
  while [ $# -gt 0 ]; do
    printf 'C: %s\n' "${1%%$'\r'*}"
    printf '%s\r\n' "$1" >&3
    if [ "$1" = DATA ]; then
      smtp_reply; shift
      printf 'C: (message: %s bytes)\n' "${#1}"
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
smtp_session 2525 "EHLO mail.woodgrovebank.com" "MAIL FROM:<kim@woodgrovebank.com>" \
  "RCPT TO:<someone@fabrikam.com>" "RCPT TO:<ted@contoso.com>" DATA \
  $'From: kim@woodgrovebank.com\r\nTo: ted@contoso.com\r\nSubject: Quarterly report\r\n\r\nHello Ted.' QUIT
echo "(fabrikam.com is not an accepted domain: 550 5.7.1, never an open relay)"
mailbox="$work/edges/mail1/maildir/contoso.com/ted/new"
for _ in $(seq 1 50); do [ -n "$(ls -A "$mailbox" 2>/dev/null)" ] && break; sleep 0.1; done
echo "delivered into the local maildir (contoso.com is an accepted domain with no internal smart host):"
show ls "$mailbox"
sed -n '1,4p' "$mailbox"/*
dsctl protocol-log --edge mail1 --connector Inet --limit 12
dsctl queue list --edge mail1

step "A mistake is refused, naming the field and the rule"
show "$bin/dsctl" transport-config set --add-tls-send-domain-secure woodgrove..com || true

step "The audit log"
dsctl audit --limit 5

cat <<EOT

DomainSec's controller and edges mail1 and mail2 are running for Contoso.
  export DSCTL_CREDENTIALS=$work/admin.toml
  $bin/dsctl transport-config get          # or: -o json
  $bin/dsctl fleet status
  $bin/domainsec-edge status --data-dir $work/edges/mail1
  $bin/dsctl protocol-log --edge mail1 --connector Inet
  $bin/dsctl queue list --edge mail1
  mail for @contoso.com sent to 127.0.0.1:2525 lands in $work/edges/mail1/maildir/
  $bin/dsctl --help
Stop everything: ./deploy/quickstart.sh stop
EOT
