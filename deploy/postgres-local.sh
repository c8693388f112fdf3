#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers for DomainSec's tests and quickstart.
#
#   deploy/postgres-local.sh          ensure one answers; prints its URL on stdout
#   deploy/postgres-local.sh stop     stop the private cluster this script started
#
# Order: $DATABASE_URL if set; else a server on 127.0.0.1:5432; else the machine's
# Debian cluster; else a private throwaway cluster under .postgres/ in the project
# (PostgreSQL's initdb/pg_ctl, run as the `postgres` user when we are root).
# DOMAINSEC_PG_PORT picks another port; DOMAINSEC_PG_PRIVATE=1 skips the Debian cluster.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
data="$root/.postgres"
port="${DOMAINSEC_PG_PORT:-5432}"
default_url="postgres://postgres@127.0.0.1:$port/postgres"

say() { echo "postgres-local: $*" >&2; }

answers() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h 127.0.0.1 -p "$port" -t 2
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
  done
  command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)" && return 0
  return 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

wait_until_answers() {
  local deadline=$((SECONDS + 30))
  until answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then say "PostgreSQL did not answer on 127.0.0.1:$port within 30 s"; return 1; fi
    sleep 0.2
  done
}

if [ "${1:-}" = stop ]; then
  if [ -f "$data/postmaster.pid" ]; then
    bin="$(pg_bin)"
    as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    say "stopped the private cluster in $data"
  fi
  exit 0
fi

if [ -n "${DATABASE_URL:-}" ]; then
  say "using DATABASE_URL"
  echo "$DATABASE_URL"
  exit 0
fi

if answers; then
  say "using the PostgreSQL server at 127.0.0.1:$port"
  echo "$default_url"
  exit 0
fi

if [ -z "${DOMAINSEC_PG_PRIVATE:-}" ] && ls /etc/postgresql/*/main >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null 2>&1; then
  version="$(ls /etc/postgresql | head -n 1)"
  say "starting the machine's PostgreSQL $version cluster"
  if pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || pg_ctlcluster "$version" main start; then
    wait_until_answers
    echo "$default_url"
    exit 0
  fi
fi

if ! bin="$(pg_bin)"; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing PostgreSQL with apt-get"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin="$(pg_bin)"
  else
    say "no PostgreSQL found: install it (apt-get install postgresql) or set DATABASE_URL"
    exit 1
  fi
fi

say "starting a private throwaway cluster in $data on 127.0.0.1:$port"
if [ ! -f "$data/PG_VERSION" ]; then
  mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown postgres: "$data"
  as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
fi
as_owner "$bin/pg_ctl" -D "$data" -l "$data/server.log" \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $data" -w start >/dev/null
wait_until_answers
echo "$default_url"
