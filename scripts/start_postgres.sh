#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the store tests (used by CI; safe to run locally).
#
#   eval "$(scripts/start_postgres.sh)"      # exports INSTRUCTREC_TEST_PG_URL
#   pytest -m postgres tests/feedback tests/serving
#
# Installs Debian's `postgresql` package when no server binaries are found (needs root),
# initialises a cluster in a temporary directory, starts it on 127.0.0.1:$PORT as the
# `postgres` user (or as yourself when not root), creates a user and a database, and prints
# the `export INSTRUCTREC_TEST_PG_URL=...` line on stdout (everything else goes to stderr).
# Stop it with:  pg_ctl -D "$INSTRUCTREC_PG_DATA" stop   (the path is printed as well).
set -euo pipefail

PORT="${INSTRUCTREC_PG_PORT:-5433}"        # not 5432: never collide with a system server
DB_NAME="${INSTRUCTREC_PG_DB:-instructrec_test}"
DB_USER="${INSTRUCTREC_PG_USER:-instructrec}"
DB_PASS="${INSTRUCTREC_PG_PASSWORD:-instructrec}"
URL="postgresql+psycopg://${DB_USER}:${DB_PASS}@127.0.0.1:${PORT}/${DB_NAME}"

log() { echo "start_postgres: $*" >&2; }

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

BIN="$(find_bin || true)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "PostgreSQL is not installed and this is not root: apt-get install -y postgresql"
    exit 1
  fi
  log "installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BIN="$(find_bin)"
fi

if [ "$(id -u)" -eq 0 ]; then
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

# already running on this port (e.g. a second call in the same CI job): just print the URL
if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; then
  log "a server already answers on 127.0.0.1:$PORT"
  echo "export INSTRUCTREC_TEST_PG_URL=$URL"
  exit 0
fi

DATA="${INSTRUCTREC_PG_DATA:-$(mktemp -d /tmp/instructrec-pg.XXXXXX)}"
mkdir -p "$DATA"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DATA"
chmod 700 "$DATA"

if [ ! -f "$DATA/PG_VERSION" ]; then
  log "initdb in $DATA"
  as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C >&2
fi

log "starting on 127.0.0.1:$PORT"
as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
  -o "-p $PORT -c listen_addresses=127.0.0.1 -k $DATA -c fsync=on" start >&2

psql_pg() { as_pg "$BIN/psql" -v ON_ERROR_STOP=1 -q -h "$DATA" -p "$PORT" -U postgres "$@"; }
if [ "$(psql_pg -tAc "SELECT 1 FROM pg_roles WHERE rolname='${DB_USER}'")" != "1" ]; then
  psql_pg -c "CREATE USER ${DB_USER} WITH PASSWORD '${DB_PASS}'" >&2
fi
if [ "$(psql_pg -tAc "SELECT 1 FROM pg_database WHERE datname='${DB_NAME}'")" != "1" ]; then
  psql_pg -c "CREATE DATABASE ${DB_NAME} OWNER ${DB_USER}" >&2
fi

log "ready (data dir $DATA; stop with: runuser -u postgres -- $BIN/pg_ctl -D $DATA stop)"
echo "export INSTRUCTREC_PG_DATA=$DATA"
echo "export INSTRUCTREC_TEST_PG_URL=$URL"
