#!/usr/bin/env bash
# Runs the drivers' own test suites, unchanged from the Go module cache, once
# straight against PostgreSQL and once through pgcrypt-proxy (TLS on the
# client leg, a policy loaded so every session takes the encrypting path),
# and reports every test that fails only through the proxy. lib/pq runs in
# the set-up of its own CI (its certificates, pg_hba.conf rules, roles and
# the host names postgres and postgres-invalid); its login tests with a
# client certificate are listed apart: that login cannot pass through a
# TLS-terminating proxy (README). With TLS on the client leg, 7 of lib/pq's
# tests fail both ways (TestService and TestNetworkError expect
# PGSSLMODE=disable).
#
#   ./scripts/driver-suites.sh              # pgx v5 (all packages) and lib/pq
#   DRIVERS=pq ./scripts/driver-suites.sh   # one of them: pgx or pq
#
# Exit status: 0 when nothing fails only through the proxy (and every test
# that passes directly ran through it too), 1 otherwise.
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
proxy_pids=
cleanup() {
	[ -n "$proxy_pids" ] && kill $proxy_pids 2>/dev/null || true
	as_pg "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

# lib/pq's own CI set-up (its testdata/postgres and compose.yaml): its
# certificates for PostgreSQL and, on the client leg, for the proxy, so a
# client that verifies the server (sslrootcert=root.crt, host postgres)
# verifies either one; its pg_hba.conf rules and roles; database and
# superuser pqgo. pgx's suite uses the same server (sslmode=require).
ssl="$pq_dir/testdata/ssl"
cp "$ssl/server.crt" "$ssl/server.key" "$ssl/root.crt" "$work/"
chmod 600 "$work/server.key"
if ! getent hosts postgres >/dev/null; then
	# lib/pq's tests connect to the host names postgres and postgres-invalid;
	# its CI adds them to /etc/hosts, and so does this script when it may.
	if [ -w /etc/hosts ]; then
		echo "==> adding '127.0.0.1 postgres postgres-invalid' to /etc/hosts (lib/pq's tests use these names)"
		echo '127.0.0.1 postgres postgres-invalid' >>/etc/hosts
	else
		echo "warning: the host name postgres does not resolve; lib/pq's TLS tests fail both ways" >&2
	fi
fi

echo "==> PostgreSQL on 127.0.0.1:$pgport, work directory $work"
pg_init "$work"
cp "$work/server.crt" "$work/server.key" "$work/root.crt" "$work/data/"
chmod 600 "$work/data/server.key"
[ "$(id -u)" = 0 ] && chown postgres "$work/data/server.crt" "$work/data/server.key" "$work/data/root.crt"
cat >"$work/data/pg_hba.conf" <<'HBA'
local      all       all                   trust
host       all       pqgomd5      all      md5
host       all       pqgopassword all      password
host       all       pqgoscram    all      scram-sha-256
host       all       postgres     all      trust
hostnossl  all       pqgossl      all      reject
hostnossl  all       pqgosslcert  all      reject
hostssl    all       pqgossl      all      trust
hostssl    all       pqgosslcert  all      cert
host       all       all          all      trust
HBA
pg_start "$work" "$pgport" -c fsync=off -c max_connections=200 -c max_prepared_transactions=10 -c ssl=on -c ssl_ca_file=root.crt
psql_do() { "$bindir/psql" -X -q -h 127.0.0.1 -p "$pgport" -U postgres -v ON_ERROR_STOP=1 "$@"; }
psql_do -d postgres -c "create database pgx_test" \
	-c "create role pqgo with login superuser" -c "create database pqgo owner pqgo" \
	-c "create role pqgossl      with login nocreatedb nocreaterole nosuperuser" \
	-c "create role pqgosslcert  with login nocreatedb nocreaterole nosuperuser" \
	-c "create role pqgopassword with login nocreatedb nocreaterole nosuperuser password 'wordpass'" \
	-c "create role pqgoscram    with login nocreatedb nocreaterole nosuperuser password 'wordpass'" \
	-c "create role pqgomd5      with login nocreatedb nocreaterole nosuperuser" \
	-c "set password_encryption = 'md5'" -c "alter role pqgomd5 password 'wordpass'"
psql_do -d pgx_test -c "create extension hstore" -c "create extension ltree" -c "create domain uint64 as numeric(20,0)"
psql_do -d postgres -f examples/clients.sql >/dev/null

# The proxy: TLS to clients with lib/pq's server certificate, TLS upstream
# when PostgreSQL offers it (as config.example.yaml has it), the seed's
# policy (its clients table is in the postgres database only: the
# drivers' sessions run the encrypting path without touching a policy
# column). Two of them: one accepts plaintext clients too (client_tls.mode
# prefer); the other requires TLS (client_tls.mode require), as an operator
# whose pg_hba.conf has hostssl-only users (lib/pq's pqgossl) configures it,
# because PostgreSQL applies those lines to the proxy's connection.
export PGCRYPT_KEY_V1
PGCRYPT_KEY_V1=$(bin/pgcrypt-proxy keygen)
# start_proxy NAME MODE: starts a proxy; sets port_NAME.
start_proxy() {
	local name=$1 mode=$2 port admin
	port=$(free_port)
	admin=$(free_port)
	sed -e "s|^listen: .*|listen: 127.0.0.1:$port|" \
		-e "s|^upstream: .*|upstream: 127.0.0.1:$pgport|" \
		-e "s|^admin_listen: .*|admin_listen: 127.0.0.1:$admin|" \
		config.example.yaml >"$work/$name.yaml"
	python3 - "$work/$name.yaml" "$work/server.crt" "$work/server.key" "$mode" <<'PY'
import sys
path, crt, key, mode = sys.argv[1:]
out, in_client = [], False
for l in open(path).read().split("\n"):
    if l.startswith("client_tls:"):
        in_client = True
    elif in_client and not l.startswith("  "):
        in_client = False
    if in_client and l.startswith("  cert_file:"):
        l = "  cert_file: " + crt
    if in_client and l.startswith("  key_file:"):
        l = "  key_file: " + key
    if in_client and l.startswith("  # mode:"):
        l = "  mode: " + mode
    out.append(l)
open(path, "w").write("\n".join(out))
PY
	bin/pgcrypt-proxy serve --config "$work/$name.yaml" >"$work/$name.log" 2>&1 &
	proxy_pids="$proxy_pids $!"
	for _ in $(seq 100); do port_free "$port" || break; sleep 0.1; done
	printf -v "port_$name" %s "$port"
}
start_proxy proxy prefer
start_proxy proxy_tls require
port=$port_proxy

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
		# lib/pq's defaults are user and database pqgo. Its TLS tests
		# (TestSSL*) check pg_hba.conf's hostssl rules for pqgossl and set
		# PGSSLMODE for the rest of the run, so they run on their own,
		# with PGSSLMODE unset as in lib/pq's CI, against the proxy that
		# requires TLS. The others run with TLS when offered (prefer, not
		# require: many talk to an in-process fake server without TLS),
		# one at a time: the listener tests allow 100 ms to connect and
		# panic, ending the test binary, when they time out, which on two
		# cores with every test in parallel happens directly too.
		run pq-direct "$pq_dir" "PGPORT=$pgport" PGSSLMODE=prefer -- -parallel 1 -skip '^TestSSL' .
		run pq-proxy "$pq_dir" "PGPORT=$port_proxy" PGSSLMODE=prefer -- -parallel 1 -skip '^TestSSL' .
		run pqssl-direct "$pq_dir" "PGPORT=$pgport" -- -run '^TestSSL' .
		run pqssl-proxy "$pq_dir" "PGPORT=$port_proxy_tls" -- -run '^TestSSL' .
		;;
	*) echo "unknown driver $d (use pgx or pq)" >&2; exit 2 ;;
	esac
done

python3 - "$work" $drivers <<'PY'
import json, sys
work, drivers = sys.argv[1], sys.argv[2:]
# A client certificate cannot reach PostgreSQL through a TLS-terminating
# proxy (README: TLS, certificates and login methods): tests that log in
# with one fail through the proxy with this message, and only those.
CLIENT_CERT = "connection requires a valid client certificate"
def results(name):
    res, out = {}, {}
    try:
        f = open(f"{work}/{name}.json")
    except FileNotFoundError:
        return res, out
    for line in f:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if not ev.get("Test"):
            continue
        key = (ev["Package"], ev["Test"])
        if ev.get("Action") in ("pass", "fail", "skip"):
            res[key] = ev["Action"]
        elif ev.get("Action") == "output":
            out[key] = out.get(key, "") + ev["Output"]
    return res, out
runs = {"pgx": ["pgx"], "pq": ["pq", "pqssl"]}
bad = 0
for d in drivers:
    for r in runs[d]:
        (direct, _), (proxy, out) = results(f"{r}-direct"), results(f"{r}-proxy")
        count = lambda res, a: sum(1 for v in res.values() if v == a)
        print(f"{r}: direct {count(direct,'pass')} passed, {count(direct,'fail')} failed, {count(direct,'skip')} skipped; "
              f"through the proxy {count(proxy,'pass')} passed, {count(proxy,'fail')} failed, {count(proxy,'skip')} skipped")
        only = sorted(k for k, v in proxy.items() if v == "fail" and direct.get(k) != "fail")
        # A test fails only for its subtests' sake when all of its failing
        # subtests are the documented client-certificate case.
        cert = {k for k in only if CLIENT_CERT in out.get(k, "")}
        for k in only:
            if k not in cert and "/" not in k[1]:
                subs = [s for s in only if s[1].startswith(k[1] + "/") and "/" not in s[1][len(k[1]) + 1:]]
                if subs and all(s in cert for s in subs):
                    cert.add(k)
        # Top-level tests only: subtest names may hold temporary paths.
        missing = sorted(k for k, v in direct.items() if v == "pass" and k not in proxy and "/" not in k[1])
        for pkg, test in only:
            if (pkg, test) in cert:
                print(f"  client certificate (a documented limit): {pkg} {test}")
            elif "/" in test:
                print(f"    subtest: {pkg} {test}")
            else:
                print(f"  FAILS ONLY THROUGH THE PROXY: {pkg} {test}")
                bad += 1
        for pkg, test in missing:
            print(f"  DID NOT RUN THROUGH THE PROXY: {pkg} {test}")
        bad += len(missing)
sys.exit(1 if bad else 0)
PY
