#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers for the tests, and prints the URL
# tests should use on stdout (everything else goes to stderr).
#   1. TEST_DATABASE_URL, when set and answering;
#   2. the server on 127.0.0.1:5432, started with pg_ctlcluster if it is
#      installed but down;
#   3. else a private cluster under .data/pg-test made with the installed
#      binaries (initdb, pg_ctl), on port 54329.
set -euo pipefail
cd "$(dirname "$0")/.."

default_url="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
url="${TEST_DATABASE_URL:-$default_url}"

answers() { psql "$1" -XAtqc 'select 1' >/dev/null 2>&1; }

if ! command -v psql >/dev/null 2>&1; then
  scripts/install-postgres.sh
fi

if answers "$url"; then echo "$url"; exit 0; fi

if [ -z "${TEST_DATABASE_URL:-}" ] && command -v pg_ctlcluster >/dev/null 2>&1 && command -v pg_lsclusters >/dev/null 2>&1; then
  read -r ver name < <(pg_lsclusters --no-header | awk '$3 == 5432 {print $1, $2; exit}') || true
  if [ -n "${ver:-}" ]; then
    echo "ensure-postgres: starting cluster $ver/$name" >&2
    pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start >&2 || true
    for _ in $(seq 50); do answers "$url" && { echo "$url"; exit 0; }; sleep 0.2; done
  fi
fi

# A private cluster with the installed binaries (installed first when
# they are missing).
scripts/install-postgres.sh
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] && command -v pg_config >/dev/null 2>&1; then bindir=$(pg_config --bindir); fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "ensure-postgres: no PostgreSQL answers at $url and no initdb was found; run scripts/install-postgres.sh or set TEST_DATABASE_URL" >&2
  exit 1
fi
dir="$PWD/.data/pg-test"
port=54329
private="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
if answers "$private"; then echo "$private"; exit 0; fi
run_as=()
if [ "$(id -u)" = 0 ]; then
  # initdb refuses to run as root.
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  mkdir -p "$dir"; chown -R postgres "$(dirname "$dir")"
  run_as=(runuser -u postgres --)
fi
if [ ! -f "$dir/PG_VERSION" ]; then
  echo "ensure-postgres: creating a private cluster in $dir" >&2
  "${run_as[@]}" "$bindir/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >&2
fi
"${run_as[@]}" "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
  -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >&2
echo "$private"
