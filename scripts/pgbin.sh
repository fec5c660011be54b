# Sourced by the scripts: finds PostgreSQL's server binaries and runs them as
# the postgres OS user when we are root (initdb and postgres refuse root).

pg_bindir() {
	if command -v initdb >/dev/null 2>&1; then
		dirname "$(readlink -f "$(command -v initdb)")"
		return
	fi
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
		echo "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin" >&2
		return 1
	fi
	echo "$d"
}

# as_pg CMD...: run CMD as the postgres user when root, else as ourselves.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# free_port: prints a TCP port nobody listens on right now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# port_free PORT: true when nothing listens on 127.0.0.1:PORT.
port_free() {
	python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) else 1)' "$1"
}

# pg_init WORK: a new cluster in WORK/data, owned by the postgres user when
# root, trusting local connections. Prints initdb's log on failure.
pg_init() {
	as_pg "$(pg_bindir)/initdb" -D "$1/data" -U postgres -A trust --no-sync >"$1/initdb.log" 2>&1 ||
		{ cat "$1/initdb.log"; return 1; }
}

# pg_start WORK PORT [SERVER OPTIONS]: starts WORK/data on 127.0.0.1:PORT
# (socket in WORK, log in WORK/postgres.log) and waits for it. Prints the
# log on failure.
pg_start() {
	local work=$1 port=$2
	shift 2
	as_pg "$(pg_bindir)/pg_ctl" -D "$work/data" -l "$work/postgres.log" -w \
		-o "-p $port -k $work -c listen_addresses=127.0.0.1 $*" start >/dev/null ||
		{ cat "$work/postgres.log"; return 1; }
}
