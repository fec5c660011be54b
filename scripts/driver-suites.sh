#!/usr/bin/env bash
# Runs the drivers' own test suites, unchanged from the Go module cache, once
# straight against PostgreSQL and once through pgcrypt-proxy (TLS on the
# client leg, a policy loaded so every session takes the encrypting path),
# and reports every test that fails only through the proxy.
#
#   ./scripts/driver-suites.sh              # pgx v5 (all packages) and lib/pq
#   DRIVERS=pq ./scripts/driver-suites.sh   # one of them: pgx or pq
#
# Exit status: 0 when nothing fails only through the proxy, 1 otherwise.
# Results and logs stay in the printed work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pgbin.sh

drivers=${DRIVERS:-"pgx pq"}
bindir=$(pg_bindir)
modcache=$(go env GOMODCACHE)
ver() { go list -m -f '{{.Version}}' "$1"; }
pgx_dir="$modcache/github.com/jackc/pgx/v5@$(ver github.com/jackc/pgx/v5)"
pq_dir="$modcache/github.com/lib/pq@$(ver github.com/lib/pq)"
go mod download github.com/jackc/pgx/v5 github.com/lib/pq

echo "==> building bin/pgcrypt-proxy"
go build -o bin/pgcrypt-proxy ./cmd/pgcrypt-proxy

work=$(mktemp -d /tmp/pgcrypt-drivers.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres "$work"
pgport=$(free_port)
proxy_pid=
cleanup() {
	[ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
	as_pg "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

# One throwaway certificate for PostgreSQL and the proxy alike: both legs
# offer TLS, so the direct and proxied runs differ only by the proxy.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$work/proxy.key" -out "$work/proxy.crt" 2>/dev/null

echo "==> PostgreSQL on 127.0.0.1:$pgport, work directory $work"
pg_init "$work"
cp "$work/proxy.crt" "$work/data/server.crt"
cp "$work/proxy.key" "$work/data/server.key"
chmod 600 "$work/data/server.key"
[ "$(id -u)" = 0 ] && chown postgres "$work/data/server.crt" "$work/data/server.key"
pg_start "$work" "$pgport" -c fsync=off -c max_connections=200 -c max_prepared_transactions=10 -c ssl=on
psql_do() { "$bindir/psql" -X -q -h 127.0.0.1 -p "$pgport" -U postgres -v ON_ERROR_STOP=1 "$@"; }
psql_do -d postgres -c "create database pgx_test" -c "create database pqgotest"
psql_do -d pgx_test -c "create extension hstore" -c "create extension ltree" -c "create domain uint64 as numeric(20,0)"
psql_do -d postgres -f examples/clients.sql >/dev/null

# The proxy: TLS to clients with a throwaway certificate, plain upstream, the
# seed's policy (its clients table is in the postgres database only: the
# drivers' sessions run the encrypting path without touching a policy column).
port=$(free_port)
admin=$(free_port)
export PGCRYPT_KEY_V1
PGCRYPT_KEY_V1=$(bin/pgcrypt-proxy keygen)
sed -e "s|^listen: .*|listen: 127.0.0.1:$port|" \
	-e "s|^upstream: .*|upstream: 127.0.0.1:$pgport|" \
	-e "s|^admin_listen: .*|admin_listen: 127.0.0.1:$admin|" \
	-e "s|^  mode: prefer .*|  mode: disable|" \
	config.example.yaml >"$work/config.yaml"
python3 - "$work/config.yaml" "$work/proxy.crt" "$work/proxy.key" <<'PY'
import sys
path, crt, key = sys.argv[1:]
lines = open(path).read().split("\n")
out, in_client = [], False
for l in lines:
    if l.startswith("client_tls:"):
        in_client = True
    elif in_client and not l.startswith("  "):
        in_client = False
    if in_client and l.startswith("  cert_file:"):
        l = "  cert_file: " + crt
    if in_client and l.startswith("  key_file:"):
        l = "  key_file: " + key
    out.append(l)
open(path, "w").write("\n".join(out))
PY
bin/pgcrypt-proxy serve --config "$work/config.yaml" >"$work/proxy.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 100); do port_free "$port" || break; sleep 0.1; done

# run NAME DIR ENV... -- PACKAGES: go test -json in DIR with ENV.
run() {
	local name=$1 dir=$2
	shift 2
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	echo "==> $name"
	local start=$SECONDS
	(cd "$dir" && env "${envs[@]}" go test -count=1 -timeout 30m -json "$@" >"$work/$name.json" 2>"$work/$name.stderr") || true
	echo "    $((SECONDS - start)) s"
}

for d in $drivers; do
	case $d in
	pgx)
		run pgx-direct "$pgx_dir" "PGX_TEST_DATABASE=host=127.0.0.1 port=$pgport user=postgres dbname=pgx_test sslmode=require" -- ./...
		run pgx-proxy "$pgx_dir" "PGX_TEST_DATABASE=host=127.0.0.1 port=$port user=postgres dbname=pgx_test sslmode=require" -- ./...
		;;
	pq)
		# prefer, not require: many lib/pq tests talk to an in-process fake
		# server that has no TLS.
		run pq-direct "$pq_dir" PGHOST=127.0.0.1 "PGPORT=$pgport" PGUSER=postgres PGDATABASE=pqgotest PGSSLMODE=prefer -- .
		run pq-proxy "$pq_dir" PGHOST=127.0.0.1 "PGPORT=$port" PGUSER=postgres PGDATABASE=pqgotest PGSSLMODE=prefer -- .
		;;
	*) echo "unknown driver $d (use pgx or pq)" >&2; exit 2 ;;
	esac
done

python3 - "$work" $drivers <<'PY'
import json, sys
work, drivers = sys.argv[1], sys.argv[2:]
def results(name):
    res = {}
    try:
        f = open(f"{work}/{name}.json")
    except FileNotFoundError:
        return res
    for line in f:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("Test") and ev.get("Action") in ("pass", "fail", "skip"):
            res[(ev["Package"], ev["Test"])] = ev["Action"]
    return res
bad = 0
for d in drivers:
    direct, proxy = results(f"{d}-direct"), results(f"{d}-proxy")
    count = lambda r, a: sum(1 for v in r.values() if v == a)
    print(f"{d}: direct {count(direct,'pass')} passed, {count(direct,'fail')} failed, {count(direct,'skip')} skipped; "
          f"through the proxy {count(proxy,'pass')} passed, {count(proxy,'fail')} failed, {count(proxy,'skip')} skipped")
    only = sorted(k for k, v in proxy.items() if v == "fail" and direct.get(k) != "fail" and "/" not in k[1])
    sub = sorted(k for k, v in proxy.items() if v == "fail" and direct.get(k) != "fail" and "/" in k[1])
    for pkg, test in only:
        print(f"  FAILS ONLY THROUGH THE PROXY: {pkg} {test}")
    for pkg, test in sub:
        print(f"    subtest: {pkg} {test}")
    bad += len(only)
sys.exit(1 if bad else 0)
PY
