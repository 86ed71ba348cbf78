#!/usr/bin/env bash
# Installs Debian's PostgreSQL (server binaries and psql) when initdb or
# psql is missing, for make run's private cluster and for the tests.
set -euo pipefail
have_initdb() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}
if have_initdb && command -v psql >/dev/null 2>&1; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-postgres: no PostgreSQL binaries and no apt-get; install PostgreSQL's server (initdb, pg_ctl, psql) yourself" >&2
  exit 1
fi
echo "install-postgres: installing Debian's postgresql" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq postgresql >&2
