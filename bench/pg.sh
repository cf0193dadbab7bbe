#!/usr/bin/env bash
# bench/pg.sh: pgbench against PostgreSQL directly, through PgBouncer
# (transaction pooling) and through tenantgate (transaction pooling, every
# statement parsed by the guard), in one run, on throwaway servers on free
# loopback ports.
#
#   bench/pg.sh [-T SECONDS] [-c "CLIENTS..."] [-M "MODES..."] [-w "WORKLOADS..."] [-s SCALE] [-p POOL] [-r ROUNDS]
#
# Defaults: -T 10 -c "8 64" -M "simple prepared" -w "select rls" -s 5 -p 20 -r 1.
# With -r, each workload, mode and client count runs ROUNDS times in a row,
# every target once per round in an order that rotates from round to round
# (a noisy neighbour hits the targets alike), and each figure printed is the
# median over the rounds.
# Workloads:
#   select  pgbench -S (the built-in select-only script on pgbench_accounts)
#   rls     a custom script: BEGIN; SELECT by key; UPDATE by key; END
# pgbench_accounts is made tenant-scoped with `tenantgate pg migrate` (tenant
# column, primary key (tenant_id, aid), RLS enabled and forced, policy) and
# holds the same rows for two tenants, acme and globex; every path runs as
# the same non-owner NOBYPASSRLS role with app.tenant_id = acme, so Row-Level
# Security costs the same everywhere: direct via PGOPTIONS, PgBouncer via the
# database entry's connect_query, tenantgate via the token (it refuses
# `options`). pgbench runs with -j 2 (-j CLIENTS for rls at -M prepared: see
# run below) and -n (no vacuum: TRUNCATE and VACUUM are not the role's, and
# tenantgate refuses TRUNCATE).
#
# Prints tps, p50/p99 latency (from pgbench --log per-transaction logs), the
# ratio tenantgate/PgBouncer and tenantgate's added p50 over direct.
# PgBouncer < 1.21 has no prepared statements in transaction pooling: with
# such a version -M prepared runs only direct and tenantgate.
# Everything it starts is stopped on exit. Needs PostgreSQL 15 server and
# pgbench (scripts/install-deps.sh); installs pgbouncer with apt-get if
# missing. Runs PostgreSQL and PgBouncer as the postgres user when root.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

duration=10 client_counts="8 64" modes="simple prepared" workloads="select rls" scale=5 pool=20 rounds=1
usage() {
	echo "usage: $0 [-T SECONDS] [-c \"CLIENTS...\"] [-M \"simple extended prepared\"] [-w \"select rls\"] [-s SCALE] [-p POOL] [-r ROUNDS]" >&2
	exit 2
}
while getopts T:c:M:w:s:p:r: opt; do
	case $opt in
	T) duration=$OPTARG ;;
	c) client_counts=$OPTARG ;;
	M) modes=$OPTARG ;;
	w) workloads=$OPTARG ;;
	s) scale=$OPTARG ;;
	p) pool=$OPTARG ;;
	r) rounds=$OPTARG ;;
	*) usage ;;
	esac
done
for m in $modes; do [[ $m =~ ^(simple|extended|prepared)$ ]] || usage; done
for w in $workloads; do [[ $w =~ ^(select|rls)$ ]] || usage; done
for n in $client_counts $duration $scale $pool $rounds; do [[ $n =~ ^[1-9][0-9]*$ ]] || usage; done

pgbin=$(tg_pg_bindir) || tg_die "PostgreSQL not installed: run scripts/install-deps.sh"
for tool in pgbench psql go; do
	command -v "$tool" >/dev/null || tg_die "$tool not found: run scripts/install-deps.sh"
done
sudo=""
[[ $(id -u) == 0 ]] || sudo=sudo
if ! command -v pgbouncer >/dev/null && [[ ! -x /usr/sbin/pgbouncer ]]; then
	tg_log "installing pgbouncer"
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q pgbouncer >/dev/null
fi
pgbouncer=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
pgb_version=$("$pgbouncer" --version | awk 'NR == 1 { print $2 }')
# max_prepared_statements (prepared statements in transaction pooling) is 1.21+.
pgb_prepared=false
if [[ $(printf '%s\n' "$pgb_version" 1.21 | sort -V | head -n 1) == 1.21 ]]; then
	pgb_prepared=true
fi

# PostgreSQL and PgBouncer refuse to run as root.
as_pg() {
	if [[ $(id -u) == 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

workdir=$(mktemp -d "${TMPDIR:-/tmp}/tenantgate-bench.XXXXXX")
chmod 755 "$workdir"
mkdir "$workdir/pg" "$workdir/logs"
[[ $(id -u) == 0 ]] && chown postgres:postgres "$workdir/pg"
pids=()
pg_started=false
cleanup() {
	local pid
	# runuser may not pass the signal on: stop PgBouncer by its own pid too.
	if [[ -s $workdir/pgbouncer/pgbouncer.pid ]]; then
		kill "$(<"$workdir/pgbouncer/pgbouncer.pid")" 2>/dev/null || true
	fi
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if $pg_started; then
		as_pg "$pgbin/pg_ctl" -D "$workdir/pg/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	fi
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- PostgreSQL ------------------------------------------------------------

pg_port=$(tg_free_port)
tg_log "postgresql: initdb ($("$pgbin/postgres" --version))"
as_pg "$pgbin/initdb" -D "$workdir/pg/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
	>"$workdir/pg/initdb.log" 2>&1 || tg_die "initdb failed: $(tail -n 5 "$workdir/pg/initdb.log")"
# Durability off (throwaway data; fsync would measure the disk, not the
# proxies); shared_buffers large enough to hold both tenants' rows.
cat >>"$workdir/pg/data/postgresql.conf" <<EOF
port = $pg_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$workdir/pg'
max_connections = 200
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
as_pg "$pgbin/pg_ctl" -D "$workdir/pg/data" -l "$workdir/pg/postgres.log" -w -t 60 start >/dev/null ||
	tg_die "postgresql did not start: $(tail -n 5 "$workdir/pg/postgres.log")"
pg_started=true
tg_log "postgresql: listening on 127.0.0.1:$pg_port"

owner_url="postgres://postgres@127.0.0.1:$pg_port/bench?sslmode=disable"
bench_url="postgres://bench@127.0.0.1:$pg_port/bench?sslmode=disable"

psql -X -q -v ON_ERROR_STOP=1 "postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable" \
	-c 'CREATE DATABASE bench' -c 'CREATE ROLE bench LOGIN NOSUPERUSER NOBYPASSRLS'
tg_log "pgbench -i -s $scale"
pgbench -i -q -s "$scale" "$owner_url" >"$workdir/logs/init.log" 2>&1 ||
	tg_die "pgbench -i failed: $(tail -n 5 "$workdir/logs/init.log")"

# --- tenantgate ------------------------------------------------------------

tg_log "building tenantgate"
go build -o "$workdir/tenantgate" ./cmd/tenantgate
tg_dev_secret
tg_port=$(tg_free_port)
admin_port=$(tg_free_port)
cat >"$workdir/tenantgate.yaml" <<YAML
jwt:
  secret: \${TENANTGATE_JWT_SECRET}
tenants:
  - id: acme
  - id: globex
admin:
  listen: 127.0.0.1:$admin_port
postgres:
  listen: 127.0.0.1:$tg_port
  upstream: $bench_url
  pool_mode: transaction
  pool_size: $pool
YAML

# Tenant-scope pgbench_accounts (its rows become acme's), then give globex
# the same keys: every lookup runs through the policy on a table that holds
# another tenant's rows. The owner is a superuser, which bypasses RLS.
tg_log "tenantgate pg migrate --table pgbench_accounts"
"$workdir/tenantgate" pg migrate --config "$workdir/tenantgate.yaml" --url "$owner_url" \
	--table pgbench_accounts --tenant acme --apply >"$workdir/logs/migrate.log" 2>&1 ||
	tg_die "pg migrate failed: $(tail -n 5 "$workdir/logs/migrate.log")"
psql -X -q -v ON_ERROR_STOP=1 "$owner_url" <<'SQL'
INSERT INTO pgbench_accounts (tenant_id, aid, bid, abalance, filler)
  SELECT 'globex', aid, bid, abalance, filler FROM pgbench_accounts;
GRANT SELECT, UPDATE ON pgbench_accounts TO bench;
GRANT SELECT ON pgbench_branches, pgbench_tellers TO bench;
VACUUM ANALYZE;
SQL

"$workdir/tenantgate" run --config "$workdir/tenantgate.yaml" --log-level warn 2>"$workdir/logs/tenantgate.log" &
pids+=($!)
token=$("$workdir/tenantgate" token --tenant acme --ttl 4h --config "$workdir/tenantgate.yaml")
for i in $(seq 100); do
	if PGPASSWORD=$token psql -X -q -h 127.0.0.1 -p "$tg_port" -U app -d bench -c 'SELECT 1' >/dev/null 2>&1; then
		break
	fi
	((i < 100)) || tg_die "tenantgate does not answer: $(tail -n 5 "$workdir/logs/tenantgate.log")"
	sleep 0.1
done
# Sanity: RLS holds on every path (half the rows are globex's).
n_rows=$((100000 * scale))
seen=$(PGPASSWORD=$token psql -X -At -h 127.0.0.1 -p "$tg_port" -U app -d bench -c 'SELECT count(*) FROM pgbench_accounts')
[[ $seen == "$n_rows" ]] || tg_die "through tenantgate acme sees $seen rows, expected $n_rows"

# --- PgBouncer -------------------------------------------------------------

pgb_port=$(tg_free_port)
mkdir "$workdir/pgbouncer"
echo '"bench" ""' >"$workdir/pgbouncer/userlist.txt"
cat >"$workdir/pgbouncer/pgbouncer.ini" <<INI
[databases]
bench = host=127.0.0.1 port=$pg_port dbname=bench user=bench connect_query='SET app.tenant_id = ''acme'''

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgb_port
unix_socket_dir =
auth_type = trust
auth_file = $workdir/pgbouncer/userlist.txt
pool_mode = transaction
default_pool_size = $pool
max_client_conn = 500
logfile = $workdir/pgbouncer/pgbouncer.log
pidfile = $workdir/pgbouncer/pgbouncer.pid
log_connections = 0
log_disconnections = 0
INI
[[ $(id -u) == 0 ]] && chown -R postgres:postgres "$workdir/pgbouncer"
as_pg "$pgbouncer" -q "$workdir/pgbouncer/pgbouncer.ini" &
pids+=($!)
for i in $(seq 100); do
	seen=$(psql -X -At -h 127.0.0.1 -p "$pgb_port" -U bench -d bench -c 'SELECT count(*) FROM pgbench_accounts' 2>/dev/null || true)
	[[ -z $seen ]] || break
	((i < 100)) || tg_die "pgbouncer does not answer: $(tail -n 5 "$workdir/pgbouncer/pgbouncer.log")"
	sleep 0.1
done
[[ $seen == "$n_rows" ]] || tg_die "through pgbouncer acme sees $seen rows, expected $n_rows"
seen=$(PGOPTIONS='-c app.tenant_id=acme' psql -X -At "$bench_url" -c 'SELECT count(*) FROM pgbench_accounts')
[[ $seen == "$n_rows" ]] || tg_die "directly acme sees $seen rows, expected $n_rows"

# --- workloads -------------------------------------------------------------

cat >"$workdir/rls.sql" <<'SQL'
\set aid random(1, :naccounts)
\set delta random(-5000, 5000)
BEGIN;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
END;
SQL

clk_tck=$(getconf CLK_TCK)
tg_pid=${pids[0]}
pgb_pid=$(<"$workdir/pgbouncer/pgbouncer.pid")

# run WORKLOAD MODE CLIENTS TARGET: one pgbench run; appends
# "workload,mode,clients,target,tps,p50_us,p99_us,proxy_cpu_us_per_tx" to
# results.csv.
run() {
	local workload=$1 mode=$2 clients=$3 target=$4 out tps pid='' cpu0=0 cpu1=0 txs cpu threads=2
	local -a script conn env=(env -u PGOPTIONS -u PGPASSWORD)
	case $workload in
	select) script=(-S) ;;
	rls) script=(-f "$workdir/rls.sql" -D "naccounts=$n_rows") ;;
	esac
	case $target in
	direct)
		conn=(-h 127.0.0.1 -p "$pg_port" -U bench)
		env+=(PGOPTIONS='-c app.tenant_id=acme')
		;;
	pgbouncer) conn=(-h 127.0.0.1 -p "$pgb_port" -U bench) ;;
	tenantgate)
		conn=(-h 127.0.0.1 -p "$tg_port" -U app)
		env+=(PGPASSWORD="$token")
		;;
	esac
	# pgbench -M prepared prepares each statement with a blocking PQprepare
	# the first time a client runs it, which stalls every client of that
	# pgbench thread. A client in the middle of BEGIN ... END holds a pooled
	# server connection while its thread waits; when all of them are held
	# that way the Parse of the blocking client waits for a free one:
	# deadlock until postgres.pool_timeout. One thread per client avoids it
	# (direct is run the same way, for the same pgbench cost).
	if [[ $mode == prepared && $workload == rls ]] || ((clients < threads)); then
		threads=$clients
	fi
	case $target in
	pgbouncer) pid=$pgb_pid ;;
	tenantgate) pid=$tg_pid ;;
	esac
	out=$workdir/logs/$workload-$mode-$clients-$target
	rm -rf "$out"
	mkdir -p "$out"
	[[ -z $pid ]] || cpu0=$(tg_cpu_ticks "$pid")
	if ! "${env[@]}" pgbench -n "${script[@]}" -M "$mode" -c "$clients" -j "$threads" -T "$duration" \
		--log --log-prefix="$out/tx" "${conn[@]}" bench >"$out/pgbench.out" 2>&1; then
		tg_log "    pgbench failed: $(grep -m 3 -i -e error -e fatal "$out/pgbench.out" | tr '\n' ' ')"
		echo "$workload,$mode,$clients,$target,0,0,0,0" >>"$workdir/results.csv"
		return 0
	fi
	[[ -z $pid ]] || cpu1=$(tg_cpu_ticks "$pid")
	tps=$(awk '/^tps = / { print $3; exit }' "$out/pgbench.out")
	txs=$(awk -F': ' '/^number of transactions actually processed/ { print $2 + 0; exit }' "$out/pgbench.out")
	cpu=$(((cpu1 - cpu0) * 1000000 / clk_tck / (txs > 0 ? txs : 1)))
	# Per-transaction log lines: client_id tx_no latency_us script_no epoch us.
	cat "$out"/tx.* | awk '{ print $3 }' | sort -n | awk -v w="$workload" -v m="$mode" -v c="$clients" -v t="$target" -v tps="$tps" -v cpu="$cpu" '
		{ v[NR] = $1 }
		END {
			p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
			printf "%s,%s,%s,%s,%.0f,%d,%d,%d\n", w, m, c, t, tps, p50, p99, cpu
		}' >>"$workdir/results.csv"
	rm -f "$out"/tx.*
}

tg_log "pgbench -T $duration -j 2 (rls -M prepared: -j CLIENTS), clients: $client_counts, modes: $modes, workloads: $workloads, rounds: $rounds"
tg_log "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); PgBouncer $pgb_version (prepared in transaction mode: $pgb_prepared)"
targets=(direct pgbouncer tenantgate)
for workload in $workloads; do
	for mode in $modes; do
		for clients in $client_counts; do
			for ((round = 0; round < rounds; round++)); do
				for i in 0 1 2; do
					target=${targets[(i + round) % 3]}
					if [[ $target == pgbouncer && $mode == prepared ]] && ! $pgb_prepared; then
						continue
					fi
					tg_log "  $workload -M $mode -c $clients $target (round $((round + 1)))"
					run "$workload" "$mode" "$clients" "$target"
				done
			done
		done
	done
done
tg_log "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# The median of each figure over the rounds (runs where pgbench failed, tps
# 0, count only when every round failed).
awk -F, "$TG_AWK_MEDIAN"'
	{ key = $1 "," $2 "," $3; k = key "," $4
	  if (!seen[key]++) order[n++] = key
	  if (!(k in tpsl)) { tpsl[k] = ""; p50l[k] = ""; p99l[k] = ""; cpul[k] = "" }
	  if ($5 > 0) { tpsl[k] = tpsl[k] " " $5; p50l[k] = p50l[k] " " $6; p99l[k] = p99l[k] " " $7; cpul[k] = cpul[k] " " $8 } }
	END {
		for (k in tpsl) {
			tps[k] = median(tpsl[k]); p50[k] = median(p50l[k]); p99[k] = median(p99l[k]); cpu[k] = median(cpul[k])
		}
		print_table()
	}
	function lat(k) { return (k in tps) && tps[k] > 0 ? sprintf("%.3f / %.3f", p50[k] / 1000, p99[k] / 1000) : "n/a" }
	function rate(k) { return (k in tps) && tps[k] > 0 ? sprintf("%.0f", tps[k]) : "n/a" }
	function us(k) { return (k in tps) && tps[k] > 0 ? sprintf("%.0f", cpu[k]) : "n/a" }
	function print_table(   i, k, d, b, g, r1, r2, add) {
		printf "| workload | -M | clients | direct tps | pgbouncer tps | tenantgate tps | tenantgate/pgbouncer | tenantgate/direct | direct p50 / p99 ms | pgbouncer p50 / p99 ms | tenantgate p50 / p99 ms | tenantgate added p50 vs direct | pgbouncer CPU µs/tx | tenantgate CPU µs/tx |\n"
		printf "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
		for (i = 0; i < n; i++) {
			split(order[i], k, ",")
			d = order[i] ",direct"; b = order[i] ",pgbouncer"; g = order[i] ",tenantgate"
			r1 = (b in tps) && tps[b] > 0 && tps[g] > 0 ? sprintf("%.2f", tps[g] / tps[b]) : "n/a"
			r2 = tps[d] > 0 && tps[g] > 0 ? sprintf("%.2f", tps[g] / tps[d]) : "n/a"
			add = tps[d] > 0 && tps[g] > 0 ? sprintf("%+d µs", p50[g] - p50[d]) : "n/a"
			printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", k[1], k[2], k[3],
				rate(d), rate(b), rate(g), r1, r2, lat(d), lat(b), lat(g), add, us(b), us(g)
		}
	}' "$workdir/results.csv"
