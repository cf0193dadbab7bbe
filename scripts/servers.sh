#!/usr/bin/env bash
# servers.sh: throwaway test datastores on free loopback ports.
#
#   scripts/servers.sh start DIR   start PostgreSQL, Redis and FerretDB (state in
#                                  DIR), write DIR/env and print it
#   scripts/servers.sh stop DIR    stop them (data in DIR is kept)
#   scripts/servers.sh env DIR     print DIR/env
#
# DIR/env exports the TENANTGATE_TEST_* URLs that internal/testutil reads:
#   . DIR/env && go test ./...
#
# Ports are random in 10000-32767 (below Linux's ephemeral range, so outgoing
# connections do not take them) and probed first, so parallel runs with
# different DIRs do not collide; a lost bind race is retried on a new port.
# start is idempotent: a server already running from DIR is kept.
# Needs scripts/install-deps.sh to have run.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	echo "usage: $0 start|stop|env DIR" >&2
	exit 2
}
[[ $# == 2 ]] || usage
cmd=$1
[[ $cmd == start ]] && mkdir -p "$2"
[[ -d $2 ]] || tg_die "no such directory: $2"
dir=$(cd "$2" && pwd)
envfile=$dir/env
pg_port='' redis_port='' ferretdb_port='' # set by the start_* functions

# --- helpers --------------------------------------------------------------

# PostgreSQL refuses to run as root.
as_pg() {
	if [[ $(id -u) == 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# alive PIDFILE NAME: the pid in PIDFILE runs and is NAME (guards against a
# stale pidfile whose pid was reused by something else).
alive() {
	local pid
	[[ -s $1 ]] || return 1
	pid=$(<"$1")
	[[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

# owns_port PIDFILE PORT: that process holds the listening socket on
# 127.0.0.1:PORT. Without this a server that lost the bind race could pass its
# readiness check against whoever did win it.
owns_port() {
	local pid hex inode
	read -r pid <"$1" || return 1
	hex=$(printf '%04X' "$2")
	inode=$(awk -v a="0100007F:$hex" '$2 == a && $4 == "0A" { print $10; exit }' /proc/net/tcp)
	[[ -n $inode ]] && find "/proc/$pid/fd" -lname "socket:\[$inode\]" 2>/dev/null | grep -q .
}

# wait_for SECONDS PIDFILE NAME PORT CMD...: until CMD succeeds against our
# own process, while that process lives.
wait_for() {
	local deadline=$((SECONDS + $1)) pidfile=$2 name=$3 port=$4
	shift 4
	until "$@" >/dev/null 2>&1 && owns_port "$pidfile" "$port"; do
		alive "$pidfile" "$name" || return 1
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

# spawn PIDFILE LOG CMD...: run CMD detached in its own session.
spawn() {
	local pidfile=$1 log=$2
	shift 2
	setsid "$@" </dev/null >>"$log" 2>&1 &
	echo $! >"$pidfile"
}

stop_pidfile() { # PIDFILE NAME
	local pid i
	if alive "$1" "$2"; then
		pid=$(<"$1")
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			alive "$1" "$2" || break
			sleep 0.1
		done
		if alive "$1" "$2"; then
			tg_log "$2 ($pid) ignored SIGTERM; killing"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$1"
}

fail() { # NAME LOG
	tg_log "ERROR: $1 did not start; last lines of $2:"
	tail -n 30 "$2" >&2 || true
	stop_all
	exit 1
}

# The PostgreSQL cluster lives in DIR/pg unless the postgres user cannot reach
# DIR (say DIR is under /root) or the socket path would be too long (107
# bytes); then in a /tmp dir recorded in DIR/pg.path and removed on stop.
pg_root() {
	if [[ -s $dir/pg.path ]]; then
		cat "$dir/pg.path"
	else
		echo "$dir/pg"
	fi
}

# --- PostgreSQL -----------------------------------------------------------

start_pg() {
	local pgbin root data port try
	pgbin=$(tg_pg_bindir) || tg_die "PostgreSQL not installed: run scripts/install-deps.sh"
	root=$(pg_root)
	data=$root/data
	if [[ -s $root/port && -f $data/postmaster.pid ]] && as_pg "$pgbin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
		pg_port=$(<"$root/port")
		tg_log "postgresql: already running on 127.0.0.1:$pg_port"
		return 0
	fi

	if [[ ! -f $data/PG_VERSION ]]; then
		mkdir -p "$root"
		if [[ $(id -u) == 0 ]]; then
			chown postgres:postgres "$root"
			# mktemp dirs are 0700; postgres only needs to pass through.
			chmod a+x "$dir"
			if ((${#root} > 80)) || ! runuser -u postgres -- test -w "$root"; then
				rm -rf "$root"
				root=$(mktemp -d /tmp/tenantgate-pg.XXXXXX)
				chown postgres:postgres "$root"
				chmod 755 "$root"
				echo "$root" >"$dir/pg.path"
				data=$root/data
			fi
		fi
		tg_log "postgresql: initdb $data"
		# trust auth for local connections (loopback only); C locale keeps
		# sorting identical everywhere; --no-sync because it is throwaway.
		as_pg "$pgbin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
			>"$root/initdb.log" 2>&1 || fail postgresql "$root/initdb.log"
		# Settings we own go in one included file, rewritten on each start.
		echo "include_if_exists = 'tenantgate.conf'" >>"$data/postgresql.conf"
	fi

	for try in 1 2 3; do
		port=$(tg_free_port)
		# Durability off: test data is thrown away, and fsync dominates.
		cat >"$data/tenantgate.conf" <<-EOF
			port = $port
			listen_addresses = '127.0.0.1'
			unix_socket_directories = '$root'
			max_connections = 200
			fsync = off
			synchronous_commit = off
			full_page_writes = off
		EOF
		chmod 644 "$data/tenantgate.conf"
		: >"$root/postgres.log"
		[[ $(id -u) == 0 ]] && chown postgres:postgres "$root/postgres.log"
		if as_pg "$pgbin/pg_ctl" -D "$data" -l "$root/postgres.log" -w -t 60 start >/dev/null 2>&1 &&
			"$pgbin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 10 && owns_port "$data/postmaster.pid" "$port"; then
			echo "$port" >"$root/port"
			pg_port=$port
			tg_log "postgresql: listening on 127.0.0.1:$port"
			return 0
		fi
		if [[ $try == 3 ]] || ! grep -qi 'in use' "$root/postgres.log"; then
			fail postgresql "$root/postgres.log"
		fi
		tg_log "postgresql: port $port taken, retrying"
	done
}

stop_pg() {
	local pgbin root
	root=$(pg_root)
	if [[ -f $root/data/postmaster.pid ]] && pgbin=$(tg_pg_bindir); then
		as_pg "$pgbin/pg_ctl" -D "$root/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
			as_pg "$pgbin/pg_ctl" -D "$root/data" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
			tg_log "postgresql: could not stop $root/data"
	fi
	if [[ -s $dir/pg.path ]]; then
		rm -rf "$root" "$dir/pg.path"
	fi
}

# --- Redis and FerretDB ---------------------------------------------------

# start_simple NAME PORTVAR READY-CHECK -- CMD... ; "{PORT}" in CMD and in
# READY-CHECK is replaced by the chosen port.
start_simple() {
	local name=$1 var=$2 check=$3 sdir=$dir/$1 port try
	shift 4
	mkdir -p "$sdir"
	if [[ -s $sdir/port ]] && alive "$sdir/pid" "$name"; then
		printf -v "$var" '%s' "$(<"$sdir/port")"
		tg_log "$name: already running on 127.0.0.1:${!var}"
		return 0
	fi
	for try in 1 2 3; do
		port=$(tg_free_port)
		: >"$sdir/log"
		spawn "$sdir/pid" "$sdir/log" "${@//\{PORT\}/$port}"
		# shellcheck disable=SC2086 # check is a command line of our own
		if wait_for 30 "$sdir/pid" "$name" "$port" ${check//\{PORT\}/$port}; then
			echo "$port" >"$sdir/port"
			printf -v "$var" '%s' "$port"
			tg_log "$name: listening on 127.0.0.1:$port"
			return 0
		fi
		stop_pidfile "$sdir/pid" "$name"
		if [[ $try == 3 ]] || ! grep -qi 'in use' "$sdir/log"; then
			fail "$name" "$sdir/log"
		fi
		tg_log "$name: port $port taken, retrying"
	done
}

start_redis() {
	command -v redis-server >/dev/null || tg_die "redis-server not installed: run scripts/install-deps.sh"
	# No persistence: nothing in a test run is worth a disk write.
	start_simple redis-server redis_port "redis-cli -h 127.0.0.1 -p {PORT} ping" -- \
		redis-server --bind 127.0.0.1 --port '{PORT}' --save '' --appendonly no \
		--dir "$dir/redis-server" --logfile '' --daemonize no
}

start_ferretdb() {
	[[ -x $TG_BIN_DIR/ferretdb ]] || tg_die "ferretdb not built: run scripts/install-deps.sh"
	mkdir -p "$dir/ferretdb/data"
	# --debug-addr=- : its metrics listener defaults to the fixed port 8088,
	# which parallel runs would fight over. Telemetry off (no network here).
	DO_NOT_TRACK=1 start_simple ferretdb ferretdb_port "$TG_BIN_DIR/tenantgate-mongo-ping mongodb://127.0.0.1:{PORT}/" -- \
		"$TG_BIN_DIR/ferretdb" --handler=sqlite --sqlite-url="file:$dir/ferretdb/data/" \
		--listen-addr='127.0.0.1:{PORT}' --debug-addr=- --telemetry=disable \
		--state-dir="$dir/ferretdb" --log-level=warn
}

stop_all() {
	stop_pidfile "$dir/ferretdb/pid" ferretdb
	stop_pidfile "$dir/redis-server/pid" redis-server
	stop_pg
	rm -f "$envfile"
}

# --- commands -------------------------------------------------------------

case $cmd in
start)
	start_pg
	start_redis
	start_ferretdb
	cat >"$envfile.tmp" <<-EOF
		export TENANTGATE_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable'
		export TENANTGATE_TEST_REDIS_URL='redis://127.0.0.1:$redis_port/0'
		export TENANTGATE_TEST_MONGO_URL='mongodb://127.0.0.1:$ferretdb_port/'
	EOF
	mv -f "$envfile.tmp" "$envfile"
	cat "$envfile"
	;;
stop)
	stop_all
	tg_log "stopped servers in $dir"
	;;
env)
	[[ -f $envfile ]] || tg_die "no servers started in $dir"
	cat "$envfile"
	;;
*) usage ;;
esac
