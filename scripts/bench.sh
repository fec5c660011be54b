#!/usr/bin/env bash
# Relay benchmark: pgbench straight to PostgreSQL, through pgcrypt-proxy, and
# through PgBouncer (when installed), interleaved round by round in one run so
# all three see the same machine. Prints median TPS and latency per target,
# the ratios against direct and against PgBouncer, and the CPU time each
# proxy spent per statement round trip (from /proc/PID/stat over the runs);
# then the latency each relay adds at one client (p50 and p99 of select-only,
# simple protocol) and the memory each holds per idle session with -m
# sessions open at once (RSS before and with them, over their number).
#
#   ./scripts/bench.sh                  # 3 rounds of 10 s per workload and target
#   ./scripts/bench.sh -T 5 -r 5 -c 8   # shorter runs, more rounds, 8 clients
#   ./scripts/bench.sh -g               # also the proxy with event_loops: -1
#                                       # (two goroutines per session)
#   ./scripts/bench.sh -w encrypted     # only the listed workloads
#   ./scripts/bench.sh -d               # durable commits (fsync and
#                                       # synchronous_commit on, PostgreSQL's
#                                       # defaults) instead of both off
#   ./scripts/bench.sh -m 200           # idle sessions for the memory figure
#                                       # (default 1000; 0 skips it)
#
# Workloads: select-only with the simple protocol (select-simple), select-only
# with prepared statements (select-prepared), pgbench's TPC-B-like write
# transaction (tpcb-write, 7 statements), and the seed's encrypted workload
# (encrypted: insert a client with a 1 KB medical history and read a random
# client by id; 2 statements) with prepared statements, and the same with the
# values written as literals in the text (encrypted-simple: what psycopg2,
# PDO with emulated prepares and Rails without prepared statements send;
# every statement is new text). The encrypted workloads run through the proxy
# with the seed policy ("policy") and, on an unencrypted copy of the table,
# direct, through the proxy without a policy ("proxy") and through
# PgBouncer; "sized" runs it direct with plaintext as long as the envelopes,
# which is what storing ciphertext costs PostgreSQL without any proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pgbin.sh
# Room for the idle sessions (two sockets each through a relay).
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

duration=10 rounds=3 clients=8 threads=2 scale=10 goroutines="" idle=1000
workloads="select-simple select-prepared tpcb-write encrypted encrypted-simple"
durability="-c fsync=off -c synchronous_commit=off"
while getopts "T:r:c:j:s:w:m:gdh" opt; do
	case $opt in
	T) duration=$OPTARG ;; r) rounds=$OPTARG ;; c) clients=$OPTARG ;;
	j) threads=$OPTARG ;; s) scale=$OPTARG ;; g) goroutines=1 ;;
	w) workloads=$(echo "$OPTARG" | tr , ' ') ;; d) durability="" ;;
	m) idle=$OPTARG ;;
	*) sed -n '2,38p' "$0"; exit 2 ;;
	esac
done
for w in $workloads; do
	case $w in select-simple | select-prepared | tpcb-write | encrypted | encrypted-simple) ;;
	*) echo "unknown workload $w (select-simple, select-prepared, tpcb-write, encrypted, encrypted-simple)" >&2; exit 2 ;;
	esac
done

bindir=$(pg_bindir)
pgbench=$(command -v pgbench || echo "$bindir/pgbench")
pgbouncer=$(command -v pgbouncer || ls /usr/sbin/pgbouncer 2>/dev/null || true)
go build -o bin/pgcrypt-proxy ./cmd/pgcrypt-proxy

work=$(mktemp -d /tmp/pgcrypt-bench.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres "$work"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	as_pg "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

pgport=$(free_port) proxyport=$(free_port) adminport=$(free_port) bouncerport=$(free_port)
echo "==> PostgreSQL on $pgport ($bindir), scale $scale, ${durability:-fsync and synchronous_commit on}"
pg_init "$work"
pg_start "$work" "$pgport" -c max_connections=$((idle + 200)) -c shared_buffers=256MB $durability
"$pgbench" -i -q -s "$scale" -h 127.0.0.1 -p "$pgport" -U postgres postgres >"$work/init.log" 2>&1

echo "==> pgcrypt-proxy on $proxyport"
cat >"$work/proxy.yaml" <<YAML
listen: 127.0.0.1:$proxyport
upstream: 127.0.0.1:$pgport
upstream_tls: { mode: disable }
admin_listen: 127.0.0.1:$adminport
keys: { active: v1, versions: { v1: { env: PGCRYPT_KEY_V1 } } }
YAML
PGCRYPT_KEY_V1=$(bin/pgcrypt-proxy keygen) bin/pgcrypt-proxy serve --config "$work/proxy.yaml" 2>"$work/proxy.log" &
proxypid=$!
pids+=("$proxypid")

# The same proxy with the seed's clients policy: pgbench's statements touch no
# policy table, so this measures what analysis and answer tracking cost.
policyport=$(free_port) policyadmin=$(free_port)
psql_bin=$(command -v psql || echo "$bindir/psql")
"$psql_bin" -X -q -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -f examples/clients.sql
"$psql_bin" -X -q -h 127.0.0.1 -p "$pgport" -U postgres -d postgres \
	-c "insert into workspaces (name) values ('bench'); create table clients_plain (like clients including all)"
history=$(python3 -c "print(('Type 2 diabetes, hypertension; metformin 500 mg. ' * 21)[:1024])")
for table in clients clients_plain; do
	cat >"$work/insert-$table.sql" <<SQL
\set n random(1, 1000000000)
insert into $table (workspace_id, first_name, last_name, email, phone, medical_history)
  values ((select id from workspaces limit 1), :n, :n, :n, :n, :h);
SQL
	{ cat "$work/insert-$table.sql"; echo "\set k random(1, 200)"
	  echo "select first_name, last_name, email, phone, medical_history from $table where id = (select id from ${table}_ids where k = :k);"; } >"$work/encrypted-$table.sql"
	# The same with the values in the text: pgbench writes variables into
	# a simple-protocol query as they are, so the strings get quotes.
	sed -e "s/:n, :n, :n, :n, :h/':n', ':n', ':n', ':n', ':h'/" "$work/encrypted-$table.sql" >"$work/encrypted-simple-$table.sql"
done
# "sized": the plain table, with values as long as the policy's envelopes.
sed -e 's/:n, :n, :n, :n, :h/:fn, :ln, :em, :ph, :mh/' "$work/encrypted-clients_plain.sql" >"$work/encrypted-sized.sql"
sed -e "s/:n, :n, :n, :n, :h/':fn', ':ln', ':em', ':ph', ':mh'/" "$work/encrypted-clients_plain.sql" >"$work/encrypted-simple-sized.sql"
sed -e "s/^listen: .*/listen: 127.0.0.1:$policyport/" -e "s/^upstream: .*/upstream: 127.0.0.1:$pgport/" \
	-e "s/^admin_listen: .*/admin_listen: 127.0.0.1:$policyadmin/" -e "s/^  mode: prefer .*/  mode: disable/" \
	config.example.yaml >"$work/policy.yaml"
PGCRYPT_KEY_V1=$(bin/pgcrypt-proxy keygen) bin/pgcrypt-proxy serve --config "$work/policy.yaml" 2>"$work/policy.log" &
policypid=$!
pids+=("$policypid")

gopid=""
if [ -n "$goroutines" ]; then
	goport=$(free_port) goadmin=$(free_port)
	sed -e "s/^listen: .*/listen: 127.0.0.1:$goport/" -e "s/^admin_listen: .*/admin_listen: 127.0.0.1:$goadmin/" "$work/proxy.yaml" >"$work/goroutines.yaml"
	echo "event_loops: -1" >>"$work/goroutines.yaml"
	PGCRYPT_KEY_V1=$(bin/pgcrypt-proxy keygen) bin/pgcrypt-proxy serve --config "$work/goroutines.yaml" 2>"$work/goroutines.log" &
	gopid=$!
	pids+=("$gopid")
fi

bouncerpid=""
if [ -n "$pgbouncer" ]; then
	echo "==> PgBouncer on $bouncerport ($($pgbouncer --version | head -1)), session pooling"
	cat >"$work/pgbouncer.ini" <<INI
[databases]
postgres = host=127.0.0.1 port=$pgport dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncerport
unix_socket_dir =
auth_type = trust
auth_file = $work/userlist.txt
pool_mode = session
max_client_conn = $((idle + 100))
default_pool_size = 100
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
INI
	echo '"postgres" ""' >"$work/userlist.txt"
	[ "$(id -u)" = 0 ] && chown postgres "$work"/pgbouncer.ini "$work"/userlist.txt
	as_pg "$pgbouncer" -d "$work/pgbouncer.ini"
	for _ in $(seq 50); do [ -s "$work/pgbouncer.pid" ] && break; sleep 0.1; done
	bouncerpid=$(cat "$work/pgbouncer.pid")
	pids+=("$bouncerpid")
else
	echo "==> PgBouncer not installed (apt-get install pgbouncer): comparing with direct only"
fi
for _ in $(seq 100); do port_free "$proxyport" || break; sleep 0.1; done

clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run WORKLOAD TARGET PORT: one pgbench run; appends "workload target tps lat_ms cpu_us_per_stmt".
run() {
	local workload=$1 target=$2 port=$3 args stmts pid="" before=0 after out
	case $workload in
	select-simple) args="-S -M simple" stmts=1 ;;
	select-prepared) args="-S -M prepared" stmts=1 ;;
	tpcb-write) args="-M prepared" stmts=7 ;;
	encrypted)
		table=clients_plain
		[ "$target" = policy ] && table=clients
		[ "$target" = sized ] && table=sized
		args="-M prepared -f $work/encrypted-$table.sql" stmts=2 ;;
	encrypted-simple)
		table=clients_plain
		[ "$target" = policy ] && table=clients
		[ "$target" = sized ] && table=sized
		args="-M simple -f $work/encrypted-simple-$table.sql" stmts=2 ;;
	esac
	case $target in proxy) pid=$proxypid ;; goroutines) pid=$gopid ;; policy) pid=$policypid ;; pgbouncer) pid=$bouncerpid ;; esac
	[ -n "$pid" ] && before=$(cpu_ticks "$pid")
	out=$("$pgbench" $args -D h="$history" "${sized[@]}" -n -c "$clients" -j "$threads" -T "$duration" -h 127.0.0.1 -p "$port" -U postgres postgres 2>&1) ||
		{ echo "$out" >&2; exit 1; }
	[ -n "$pid" ] && after=$(cpu_ticks "$pid")
	local tps lat tx cpu="-"
	tps=$(echo "$out" | awk '/^tps = /{print $3; exit}')
	lat=$(echo "$out" | awk '/^latency average/{print $4; exit}')
	tx=$(echo "$out" | sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p')
	if [ -n "$pid" ] && [ "$tx" -gt 0 ]; then
		cpu=$(awk -v t=$((after - before)) -v c="$clk" -v n="$tx" -v s="$stmts" 'BEGIN{printf "%.1f", t / c * 1e6 / (n * s)}')
	fi
	printf '%-16s %-10s %10.0f %8.3f %8s\n' "$workload" "$target" "$tps" "$lat" "$cpu"
	echo "$workload $target $tps $lat $cpu" >>"$work/results"
}

for _ in $(seq 100); do port_free "$policyport" || break; sleep 0.1; done
# 200 clients to read in each table: through the proxy (encrypted) and direct.
for tp in clients:$policyport clients_plain:$pgport; do
	"$pgbench" -M prepared -n -c 8 -t 25 -D h="$history" -f "$work/insert-${tp%%:*}.sql" -h 127.0.0.1 -p "${tp##*:}" -U postgres postgres >"$work/preload.log" 2>&1 ||
		{ cat "$work/preload.log"; exit 1; }
	"$psql_bin" -X -q -h 127.0.0.1 -p "$pgport" -U postgres -d postgres \
		-c "create table ${tp%%:*}_ids as select row_number() over () as k, id from ${tp%%:*}; create index on ${tp%%:*}_ids (k)"
done
# Random base64 text as long as each column's envelopes, for "sized".
mapfile -t sized < <("$psql_bin" -X -A -t -q -h 127.0.0.1 -p "$pgport" -U postgres -d postgres \
	-c "select max(length(first_name)), max(length(last_name)), max(length(email)), max(length(phone)), max(length(medical_history)) from clients" |
	python3 -c '
import base64, os, sys
for var, n in zip(["fn", "ln", "em", "ph", "mh"], map(int, sys.stdin.read().strip().split("|"))):
    print("-D"); print(var + "=" + base64.b64encode(os.urandom(n))[:n].decode())')
if [ -n "$gopid" ]; then
	for _ in $(seq 100); do port_free "$goport" || break; sleep 0.1; done
fi
targets="direct:$pgport proxy:$proxyport policy:$policyport"
[ -n "$gopid" ] && targets="$targets goroutines:$goport"
[ -n "$bouncerpid" ] && targets="$targets pgbouncer:$bouncerport"
echo "==> $rounds rounds x ${duration}s, $clients clients, $threads threads"
printf '%-16s %-10s %10s %8s %8s\n' workload target tps lat_ms cpu_us
for r in $(seq "$rounds"); do
	for w in $workloads; do
		wt=$targets
		case $w in encrypted*) wt=$(echo "$targets sized:$pgport" | tr ' ' '\n' | grep -v '^goroutines:') ;; esac
		for t in $wt; do
			run "$w" "${t%%:*}" "${t##*:}"
		done
	done
done

echo
echo "==> medians over $rounds rounds (cpu_us: the proxy's own CPU time per statement round trip;"
echo "    policy: the proxy with the seed's clients policy, which pgbench's tables do not touch,"
echo "    and which encrypts the 'encrypted' workload's five columns; direct, proxy and pgbouncer run that"
echo "    on a plain copy; sized: direct on the plain copy with values as long as the envelopes;"
echo "    goroutines: the proxy with event_loops: -1)"
python3 - "$work/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
res = {}
for w, t, tps, lat, cpu in rows:
    r = res.setdefault((w, t), {"tps": [], "lat": [], "cpu": []})
    r["tps"].append(float(tps)); r["lat"].append(float(lat))
    if cpu != "-": r["cpu"].append(float(cpu))
med = lambda xs: statistics.median(xs) if xs else None
print(f"{'workload':16} {'target':10} {'tps':>10} {'lat_ms':>8} {'cpu_us':>7} {'vs direct':>9} {'vs bouncer':>10}")
for w in ["select-simple", "select-prepared", "tpcb-write", "encrypted", "encrypted-simple"]:
    if (w, "direct") not in res: continue
    d = med(res[(w, "direct")]["tps"])
    b = med(res[(w, "pgbouncer")]["tps"]) if (w, "pgbouncer") in res else None
    for t in ["direct", "sized", "pgbouncer", "proxy", "policy", "goroutines"]:
        if (w, t) not in res: continue
        r = res[(w, t)]
        cpu = med(r["cpu"])
        vb = f"{med(r['tps'])/b:10.3f}" if b else f"{'-':>10}"
        print(f"{w:16} {t:10} {med(r['tps']):10.0f} {med(r['lat']):8.3f} {f'{cpu:.1f}' if cpu is not None else '-':>7} {med(r['tps'])/d:9.3f} {vb}")
PY

# Latency added at one client: select-only, simple protocol, every
# transaction's latency logged (pgbench -l), rounds interleaved.
lat_targets=$(echo "$targets" | tr ' ' '\n' | grep -v '^goroutines:' | tr '\n' ' ')
for r in $(seq "$rounds"); do
	for t in $lat_targets; do
		"$pgbench" -S -M simple -n -c 1 -j 1 -T "$duration" -l --log-prefix="$work/lat-${t%%:*}-$r" \
			-h 127.0.0.1 -p "${t##*:}" -U postgres postgres >"$work/lat.log" 2>&1 || { cat "$work/lat.log"; exit 1; }
	done
done
echo
echo "==> latency at one client, select-only, simple protocol (all rounds' transactions)"
python3 - "$work" $lat_targets <<'PY'
import glob, statistics, sys
work, targets = sys.argv[1], [t.split(":")[0] for t in sys.argv[2:]]
lat = {}
for t in targets:
    xs = sorted(int(l.split()[2]) for f in glob.glob(f"{work}/lat-{t}-*") for l in open(f))
    lat[t] = (xs[len(xs) // 2], xs[int(len(xs) * 0.99)], len(xs))
d50, d99, _ = lat["direct"]
print(f"{'target':10} {'p50_us':>7} {'p99_us':>7} {'added_p50':>9} {'added_p99':>9} {'n':>8}")
for t in targets:
    p50, p99, n = lat[t]
    print(f"{t:10} {p50:7d} {p99:7d} {p50 - d50:9d} {p99 - d99:9d} {n:8d}")
PY

# Memory per idle session: RSS with $idle sessions open (logged in, no
# statement) for 10 s, less RSS before, over $idle.
if [ "$idle" -gt 0 ]; then
	echo
	echo "==> memory per idle session, $idle sessions open at once"
	printf '\\sleep 1 s\n' >"$work/idle.sql"
	established() { # PORT: established TCP connections to it
		python3 - "$1" <<'PY'
import sys
port = int(sys.argv[1])
n = 0
for f in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        for l in open(f).readlines()[1:]:
            p = l.split()
            if int(p[1].split(":")[1], 16) == port and p[3] == "01":
                n += 1
    except FileNotFoundError:
        pass
print(n)
PY
	}
	rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
	printf '%-10s %9s %9s %12s\n' target rss_kb idle_kb per_session_kb
	for t in proxy:$proxyport:$proxypid policy:$policyport:$policypid pgbouncer:$bouncerport:$bouncerpid; do
		IFS=: read -r name port pid <<<"$t"
		[ -n "$pid" ] || continue
		before=$(rss_kb "$pid")
		"$pgbench" -n -c "$idle" -j 2 -T $((idle / 25 + 40)) -f "$work/idle.sql" -h 127.0.0.1 -p "$port" -U postgres postgres >"$work/idle.log" 2>&1 &
		bp=$!
		for _ in $(seq 600); do [ "$(established "$port")" -ge "$idle" ] && break; sleep 0.1; done
		# Idle means idle for a while: the proxy retires an idle
		# session's coroutines after 1 s, and the runtime returns the
		# memory they held over the next seconds.
		sleep 10
		during=$(rss_kb "$pid")
		kill "$bp" 2>/dev/null || true
		wait "$bp" 2>/dev/null || true
		awk -v n="$name" -v b="$before" -v d="$during" -v i="$idle" 'BEGIN{printf "%-10s %9d %9d %12.1f\n", n, b, d, (d - b) / i}'
		for _ in $(seq 100); do [ "$(established "$port")" -eq 0 ] && break; sleep 0.1; done
	done
fi
