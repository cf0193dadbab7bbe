#!/usr/bin/env bash
# demo.sh: the main job. Starts local datastores and tenantgate in front of
# them, mints a token per demo tenant, and keeps the sidecar running until
# Ctrl-C (or for --for DURATION, e.g. --for 10s).
#
# Today it runs the admin listener, JWT identity, the tenant registry in
# PostgreSQL cached in Redis, and the Redis and MongoDB engines; two tenants
# write the same key names through Redis. The PostgreSQL and Bolt engines and
# the ragcore demo join here as they land.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

run_for=""
if [[ ${1:-} == --for ]]; then
	run_for=${2:?--for needs a duration, e.g. 10s}
fi

scripts/install-deps.sh

workdir=$(mktemp -d "${TMPDIR:-/tmp}/tenantgate-demo.XXXXXX")
tg_pid=""
cleanup() {
	if [[ -n $tg_pid ]]; then
		kill "$tg_pid" 2>/dev/null || true
		wait "$tg_pid" 2>/dev/null || true
	fi
	scripts/servers.sh stop "$workdir" >/dev/null 2>&1 || true
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

scripts/servers.sh start "$workdir" >/dev/null
# shellcheck source=/dev/null
. "$workdir/env"

tg_log "building tenantgate"
go build -o "$workdir/tenantgate" ./cmd/tenantgate

# The tenant registry lives in PostgreSQL: two active tenants, one suspended.
psql -q -v ON_ERROR_STOP=1 "$TENANTGATE_TEST_POSTGRES_URL" <<'SQL'
CREATE SCHEMA IF NOT EXISTS tenantgate;
CREATE TABLE IF NOT EXISTS tenantgate.tenants (id text PRIMARY KEY, slug text UNIQUE NOT NULL, active bool NOT NULL DEFAULT true);
INSERT INTO tenantgate.tenants VALUES ('acme', 'acme', true), ('globex', 'globex', true), ('initech', 'initech', false)
ON CONFLICT (id) DO NOTHING;
SQL

TENANTGATE_JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export TENANTGATE_JWT_SECRET
admin_port=$(tg_free_port)
redis_port=$(tg_free_port)
mongo_port=$(tg_free_port)
cat >"$workdir/tenantgate.yaml" <<YAML
jwt:
  secret: \${TENANTGATE_JWT_SECRET}
registry:
  postgres: "$TENANTGATE_TEST_POSTGRES_URL"
  redis: "$TENANTGATE_TEST_REDIS_URL"
  ttl: 5s
admin:
  listen: 127.0.0.1:$admin_port
audit:
  file: $workdir/audit.jsonl
redis:
  listen: 127.0.0.1:$redis_port
  upstream: "$TENANTGATE_TEST_REDIS_URL"
mongo:
  listen: 127.0.0.1:$mongo_port
  upstream: "$TENANTGATE_TEST_MONGO_URL"
YAML

"$workdir/tenantgate" check-config --config "$workdir/tenantgate.yaml" >/dev/null
"$workdir/tenantgate" run --config "$workdir/tenantgate.yaml" 2>"$workdir/tenantgate.log" &
tg_pid=$!
ready=""
for _ in $(seq 100); do
	if curl -fsS "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1; then
		ready=yes
		break
	fi
	sleep 0.1
done
if [[ -z $ready ]]; then
	tail -n 20 "$workdir/tenantgate.log" >&2
	tg_die "tenantgate did not become ready"
fi

acme=$("$workdir/tenantgate" token --tenant acme --ttl 1h)
globex=$("$workdir/tenantgate" token --tenant globex --ttl 1h)

tg_log "two tenants write the same key through the sidecar"
for tenant in acme globex; do
	tok=$acme
	[[ $tenant == globex ]] && tok=$globex
	redis-cli -p "$redis_port" --no-auth-warning -a "$tok" SET greeting "hello from $tenant" >/dev/null
	printf '  %-7s GET greeting -> %s\n' "$tenant" "$(redis-cli -p "$redis_port" --no-auth-warning -a "$tok" GET greeting)"
done
printf '  %-7s KEYS *        -> %s\n' acme "$(redis-cli -p "$redis_port" --no-auth-warning -a "$acme" KEYS '*' | tr '\n' ' ')"
printf '  upstream KEYS *greeting -> %s\n' "$(redis-cli -u "$TENANTGATE_TEST_REDIS_URL" KEYS '*greeting' | sort | tr '\n' ' ')"
printf '  acme    EVAL ...          -> %s\n' "$(redis-cli -p "$redis_port" --no-auth-warning -a "$acme" EVAL "return redis.call('KEYS','*')" 0 2>&1)"
initech=$("$workdir/tenantgate" token --tenant initech --ttl 1h)
printf '  initech (suspended) PING -> %s\n' "$(redis-cli -p "$redis_port" --no-auth-warning -a "$initech" PING 2>&1 | head -n 1)"

cat <<MSG

tenantgate is running (pid $tg_pid).
  admin:     http://127.0.0.1:$admin_port/metrics  /healthz  /readyz
  redis:     redis-cli -p $redis_port --user app --pass <token>
  mongo:     mongodb://app:<token>@127.0.0.1:$mongo_port/appdb?authMechanism=PLAIN&authSource=%24external
  registry:  PostgreSQL tenantgate.tenants (acme, globex active; initech suspended), cached in Redis
  audit log: $workdir/audit.jsonl
  logs:      $workdir/tenantgate.log

Tokens (present them as the datastore password):
  acme:   $acme
  globex: $globex

Not in this build yet: the PostgreSQL and Bolt listeners and the ragcore demo
(issues 3, 6, 7). tenantgate refuses to start a protocol section it has no engine
for, so this demo configures Redis and MongoDB only.

MSG
curl -fsS "http://127.0.0.1:$admin_port/metrics" | grep -E '^tenantgate_(requests|refusals|auth_failures)_total\{.*protocol="redis"' | grep -v ' 0$' || true

if [[ -n $run_for ]]; then
	sleep "$run_for"
else
	echo
	echo "Press Ctrl-C to stop."
	wait "$tg_pid"
fi
