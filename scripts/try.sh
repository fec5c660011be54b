#!/usr/bin/env bash
# Try pgcrypt-proxy at once: builds it, starts a throwaway PostgreSQL with the
# seed's clients table, and runs the proxy in front of it with a fresh key.
# Ctrl-C stops both and deletes everything.
#
#   ./scripts/try.sh            # proxy on 127.0.0.1:6432 (or a free port)
#   PGCRYPT_TRY_PORT=7432 ./scripts/try.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pgbin.sh

bindir=$(pg_bindir)
echo "==> building bin/pgcrypt-proxy"
go build -o bin/pgcrypt-proxy ./cmd/pgcrypt-proxy

work=$(mktemp -d /tmp/pgcrypt-try.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres "$work"
pgport=$(free_port)
cleanup() {
	as_pg "$bindir/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "==> starting a throwaway PostgreSQL on 127.0.0.1:$pgport ($bindir)"
pg_init "$work"
pg_start "$work" "$pgport" -c fsync=off
"$bindir/psql" -X -q -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -v ON_ERROR_STOP=1 -f examples/clients.sql

port=${PGCRYPT_TRY_PORT:-6432}
port_free "$port" || port=$(free_port)
admin=$(free_port)
export PGCRYPT_KEY_V1
PGCRYPT_KEY_V1=$(bin/pgcrypt-proxy keygen)
sed -e "s/^listen: .*/listen: 127.0.0.1:$port/" \
	-e "s/^upstream: .*/upstream: 127.0.0.1:$pgport/" \
	-e "s/^admin_listen: .*/admin_listen: 127.0.0.1:$admin/" \
	-e "s/^  mode: prefer .*/  mode: disable/" \
	config.example.yaml >"$work/config.yaml"

cat <<MSG

pgcrypt-proxy is starting on 127.0.0.1:$port in front of that PostgreSQL.
In another terminal:

  psql "host=127.0.0.1 port=$port user=postgres dbname=postgres"     # through the proxy
  psql "host=127.0.0.1 port=$pgport user=postgres dbname=postgres"     # straight to PostgreSQL
  curl -s http://127.0.0.1:$admin/metrics | grep ^pgcrypt_

The clients table of config.example.yaml is created. Press Ctrl-C to stop.

MSG
bin/pgcrypt-proxy serve --config "$work/config.yaml"
