#!/usr/bin/env bash
# Installs the PostgreSQL server binaries the hub's store and replica tests run (tests/pg_helpers.py starts
# a private server with initdb/pg_ctl as the `postgres` user, on a Unix socket in a temp dir), when missing.
# Idempotent: does nothing when initdb and the postgres user are there. Creates no cluster and starts no
# server (no service on a shared port): the tests start and stop their own.
set -euo pipefail

have_server() {
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && id postgres >/dev/null 2>&1
}

if have_server; then
  echo "postgres.sh: PostgreSQL server binaries present ($(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' '))"
  exit 0
fi

echo "postgres.sh: installing Debian's postgresql packages"
# Debian's package would create and start a "main" cluster on port 5432; the tests need neither.
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
  mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
have_server || { echo "postgres.sh: initdb still missing after the install" >&2; exit 1; }
echo "postgres.sh: ready ($(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' '))"
