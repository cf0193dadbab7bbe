#!/usr/bin/env bash
# bench/redis.sh: redis-benchmark against Redis directly, through twemproxy
# (nutcracker, a one-server pool) and through tenantgate, in one run, on
# throwaway servers on free loopback ports.
#
#   bench/redis.sh [-n REQUESTS] [-c CLIENTS] [-t TESTS] [-r ROUNDS]
#
# Defaults: -n 100000 -c 50 -t set,get,lpush,lpop,mset, each at -P 1 and
# -P 16, -r 3. Each round runs every target once, in an order that rotates
# from round to round, so that a noisy neighbour hits the targets alike.
# Each test runs as a redis-benchmark of its own. Prints the median requests
# per second per target over the rounds, the ratios tenantgate/twemproxy and
# tenantgate/direct of the medians, and the median CPU time each proxy used
# per command (/proc/PID/stat around the test; Redis's and
# redis-benchmark's are not in it). Everything it starts is stopped on exit. Needs redis-server and redis-benchmark (Debian
# redis-server, redis-tools); installs nutcracker with apt-get if missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

requests=100000 clients=50 tests=set,get,lpush,lpop,mset rounds=3
while getopts n:c:t:r: opt; do
	case $opt in
	n) requests=$OPTARG ;;
	c) clients=$OPTARG ;;
	t) tests=$OPTARG ;;
	r) rounds=$OPTARG ;;
	*) echo "usage: $0 [-n REQUESTS] [-c CLIENTS] [-t TESTS] [-r ROUNDS]" >&2 && exit 2 ;;
	esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || tg_die "-r wants a positive number of rounds"

for tool in redis-server redis-benchmark redis-cli go; do
	command -v "$tool" >/dev/null || tg_die "$tool not found: run scripts/install-deps.sh"
done
if ! command -v nutcracker >/dev/null && [[ ! -x /usr/sbin/nutcracker ]]; then
	tg_log "installing nutcracker (twemproxy)"
	sudo=""
	[[ $(id -u) == 0 ]] || sudo=sudo
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q nutcracker >/dev/null
fi
nutcracker=$(command -v nutcracker || echo /usr/sbin/nutcracker)

workdir=$(mktemp -d "${TMPDIR:-/tmp}/tenantgate-bench.XXXXXX")
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_ping PORT [AUTH...]: wait until something answers PING on PORT.
wait_ping() {
	local port=$1
	shift
	for _ in $(seq 100); do
		if [[ $(redis-cli -p "$port" --no-auth-warning "$@" ping 2>/dev/null) == PONG ]]; then
			return 0
		fi
		sleep 0.1
	done
	tg_die "nothing answers PING on port $port (logs in $workdir)"
}

redis_port=$(tg_free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
	--dir "$workdir" --logfile "$workdir/redis.log" --daemonize no &
pids+=($!)
wait_ping "$redis_port"

twem_port=$(tg_free_port)
twem_stats=$(tg_free_port)
cat >"$workdir/nutcracker.yml" <<YAML
bench:
  listen: 127.0.0.1:$twem_port
  hash: fnv1a_64
  distribution: ketama
  redis: true
  auto_eject_hosts: false
  servers:
    - 127.0.0.1:$redis_port:1
YAML
"$nutcracker" -c "$workdir/nutcracker.yml" -s "$twem_stats" -a 127.0.0.1 \
	-o "$workdir/nutcracker.log" -p "$workdir/nutcracker.pid" &
pids+=($!)
wait_ping "$twem_port"

tg_log "building tenantgate"
go build -o "$workdir/tenantgate" ./cmd/tenantgate
tg_dev_secret
tg_port=$(tg_free_port)
admin_port=$(tg_free_port)
cat >"$workdir/tenantgate.yaml" <<YAML
jwt:
  secret: \${TENANTGATE_JWT_SECRET}
tenants:
  - id: bench
admin:
  listen: 127.0.0.1:$admin_port
redis:
  listen: 127.0.0.1:$tg_port
  upstream: redis://127.0.0.1:$redis_port/0
YAML
"$workdir/tenantgate" run --config "$workdir/tenantgate.yaml" 2>"$workdir/tenantgate.log" &
pids+=($!)
token=$("$workdir/tenantgate" token --tenant bench --ttl 2h --config "$workdir/tenantgate.yaml")
wait_ping "$tg_port" -a "$token"

clk_tck=$(getconf CLK_TCK)
twem_pid=${pids[1]} tg_pid=${pids[2]}

# bench TARGET PIPELINE TEST: run redis-benchmark, append
# "target,P,TEST,rps,proxy_cpu_ns_per_command" to results.csv.
bench() {
	local target=$1 pipeline=$2 test=$3 port auth=() pid='' cpu0=0 cpu1=0 rps
	case $target in
	direct) port=$redis_port ;;
	twemproxy) port=$twem_port pid=$twem_pid ;;
	tenantgate) port=$tg_port auth=(-a "$token") pid=$tg_pid ;;
	esac
	redis-cli -p "$redis_port" flushall >/dev/null
	[[ -z $pid ]] || cpu0=$(tg_cpu_ticks "$pid")
	rps=$(redis-benchmark -h 127.0.0.1 -p "$port" "${auth[@]}" -q --csv -c "$clients" -n "$requests" \
		-P "$pipeline" -t "$test" 2>/dev/null | awk -F'"' 'NR > 1 && $2 != "" { print $4; exit }')
	[[ -z $pid ]] || cpu1=$(tg_cpu_ticks "$pid")
	echo "$target,$pipeline,${test^^},${rps:-0},$(((cpu1 - cpu0) * 1000000000 / clk_tck / requests))" >>"$workdir/results.csv"
}

tg_log "redis-benchmark -n $requests -c $clients -t $tests, at -P 1 and -P 16, $rounds rounds (machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
targets=(direct twemproxy tenantgate)
for round in $(seq "$rounds"); do
	for pipeline in 1 16; do
		for test in ${tests//,/ }; do
			for i in 0 1 2; do
				target=${targets[$(((i + round) % 3))]}
				tg_log "  round $round -P $pipeline $test $target"
				bench "$target" "$pipeline" "$test"
			done
		done
	done
done
tg_log "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# The median of each target, pipeline and test over the rounds.
awk -F, "$TG_AWK_MEDIAN"'
	{ key = $1 "," $2 "," $3; rps[key] = rps[key] " " $4; cpu[key] = cpu[key] " " $5
	  if (!seen[$2 "," $3]++) order[n++] = $2 "," $3 }
	END {
		printf "| test | -P | direct | twemproxy | tenantgate | tenantgate/twemproxy | tenantgate/direct | twemproxy CPU µs/cmd | tenantgate CPU µs/cmd |\n"
		printf "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
		for (i = 0; i < n; i++) {
			split(order[i], k, ",")
			d = median(rps["direct," order[i]]); w = median(rps["twemproxy," order[i]]); g = median(rps["tenantgate," order[i]])
			printf "| %s | %s | %.0f | %.0f | %.0f | %s | %s | %.1f | %.1f |\n", k[2], k[1], d, w, g,
				(w > 0 ? sprintf("%.2f", g / w) : "n/a"), (d > 0 ? sprintf("%.2f", g / d) : "n/a"),
				median(cpu["twemproxy," order[i]]) / 1000, median(cpu["tenantgate," order[i]]) / 1000
		}
	}' "$workdir/results.csv"
