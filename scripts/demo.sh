#!/usr/bin/env bash
# demo.sh: the main job. Starts local datastores and tenantgate in front of
# them, and runs ragcore -- a RAG engine that knows nothing of tenants --
# through it as two tenants with overlapping corpora. Then it keeps the stack
# running until Ctrl-C.
#
#   scripts/demo.sh               run the demo, then serve until Ctrl-C
#   scripts/demo.sh --for 10m     ... then serve for that long (sleep syntax)
#   scripts/demo.sh --once        run the scripted demo, then stop and exit 0
#   DEMO_KEEP=1 scripts/demo.sh   keep the work directory (logs, audit) afterwards
#
# Steps: install what is missing, start PostgreSQL, Redis and FerretDB on free
# ports, build tenantgate and ragcore, apply ragcore's single-tenant schema and
# `tenantgate pg migrate` to it as the owner (in hardened mode: the policies
# check an HMAC of the tenant, postgres.tenant_signature), create the proxy's own role
# (NOBYPASSRLS, DML only), start tenantgate with the PostgreSQL, Redis and
# MongoDB listeners and the tenant registry in PostgreSQL (acme and techstart
# active, initech suspended), ingest ragcore/testdata/corpus/{acme,techstart}
# through it with each tenant's token as the only credential, ask both the same
# question, and show cross-tenant attempts refused. No Neo4j can run here:
# ragcore keeps its graph in PostgreSQL (the Bolt engine is tested against a
# scripted peer instead).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

run_for="" once=""
while (($#)); do
	case $1 in
	--for)
		run_for=${2:?--for needs a duration, e.g. 10s}
		shift 2
		;;
	--once)
		once=yes
		shift
		;;
	-h | --help)
		sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) tg_die "unknown argument $1 (want --once or --for DURATION)" ;;
	esac
done

bold="" plain=""
if [[ -t 1 ]]; then
	bold=$'\033[1m' plain=$'\033[0m'
fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
say() { printf '    %s\n' "$*"; }
indent() { sed 's/^/    /'; }

step "installing what is missing (PostgreSQL, Redis, FerretDB)"
scripts/install-deps.sh 2>&1 | indent

workdir=$(mktemp -d "${TMPDIR:-/tmp}/tenantgate-demo.XXXXXX")
tg_pid=""
cleanup() {
	if [[ -n $tg_pid ]]; then
		kill "$tg_pid" 2>/dev/null || true
		wait "$tg_pid" 2>/dev/null || true
	fi
	scripts/servers.sh stop "$workdir" >/dev/null 2>&1 || true
	[[ -n ${DEMO_KEEP:-} ]] || rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "starting PostgreSQL, Redis and FerretDB on free loopback ports ($workdir)"
scripts/servers.sh start "$workdir" >/dev/null 2>"$workdir/servers.log" || {
	cat "$workdir/servers.log" >&2
	tg_die "the datastores did not start"
}
# shellcheck source=/dev/null
. "$workdir/env"
pg_super=$TENANTGATE_TEST_POSTGRES_URL # superuser, database postgres
owner_url=${pg_super/\/postgres\?/\/appdb\?} # the same superuser, database appdb: the tables' owner
[[ $owner_url != "$pg_super" ]] || tg_die "unexpected PostgreSQL URL $pg_super"
pg_hostport=${pg_super#*@}
pg_hostport=${pg_hostport%%/*}
say "postgres $pg_hostport, redis ${TENANTGATE_TEST_REDIS_URL#redis://}, ferretdb ${TENANTGATE_TEST_MONGO_URL#mongodb://}"

step "building tenantgate and ragcore"
go build -o "$workdir/tenantgate" ./cmd/tenantgate
go build -o "$workdir/ragcore" ./cmd/ragcore
tg=$workdir/tenantgate
rc=$workdir/ragcore

tg_dev_secret
TENANTGATE_PG_SIGNING_KEY=$(openssl rand -hex 32)
export TENANTGATE_PG_SIGNING_KEY
admin_port=$(tg_free_port)
pg_port=$(tg_free_port)
redis_port=$(tg_free_port)
mongo_port=$(tg_free_port)
cat >"$workdir/tenantgate.yaml" <<YAML
jwt:
  secret: \${TENANTGATE_JWT_SECRET}
registry:
  postgres: "$pg_super"
  redis: "$TENANTGATE_TEST_REDIS_URL"
  ttl: 5s
admin:
  listen: 127.0.0.1:$admin_port
audit:
  file: $workdir/audit.jsonl
postgres:
  listen: 127.0.0.1:$pg_port
  upstream: "postgres://tenantgate@$pg_hostport/appdb?sslmode=disable"
  tenant_signature:   # hardened mode: the policies check the proxy's HMAC of the tenant
    key: \${TENANTGATE_PG_SIGNING_KEY}
redis:
  listen: 127.0.0.1:$redis_port
  upstream: "$TENANTGATE_TEST_REDIS_URL"
mongo:
  listen: 127.0.0.1:$mongo_port
  upstream: "$TENANTGATE_TEST_MONGO_URL"
YAML

step "PostgreSQL: ragcore's schema, made tenant-scoped by tenantgate pg migrate (as the owner)"
psql -q -v ON_ERROR_STOP=1 "$pg_super" -c 'CREATE DATABASE appdb'
"$rc" schema --apply --postgres "$owner_url" 2>&1 | indent
tables=$(psql -At "$owner_url" -c "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
for table in $tables; do
	"$tg" pg migrate --config "$workdir/tenantgate.yaml" --url "$owner_url" --table "$table" --apply \
		>"$workdir/migrate-$table.sql" 2>/dev/null
	say "migrated $table: tenant_id column, primary key (tenant_id, id), RLS forced ($(wc -l <"$workdir/migrate-$table.sql") statements)"
done
say "hardened mode: the policies test tenantgate_rls.current_tenant(), which checks the proxy's HMAC of the tenant (key stored, not printed)"
# The proxy's own role: not the owner, no BYPASSRLS, DML only (the test
# server trusts loopback connections, so it needs no password here).
psql -q -v ON_ERROR_STOP=1 "$owner_url" <<'SQL'
CREATE ROLE tenantgate LOGIN NOSUPERUSER NOBYPASSRLS;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO tenantgate;
SQL
say "role tenantgate: LOGIN NOSUPERUSER NOBYPASSRLS, SELECT/INSERT/UPDATE/DELETE on ragcore's tables"
say "tenantgate pg audit (what tenantgate run checks before it serves):"
"$tg" pg audit --config "$workdir/tenantgate.yaml" 2>&1 | grep -Ev '^(info|warning) ' | indent | indent

# The tenant registry lives in PostgreSQL: two active tenants, one suspended.
psql -q -v ON_ERROR_STOP=1 "$pg_super" <<'SQL'
CREATE SCHEMA IF NOT EXISTS tenantgate;
CREATE TABLE IF NOT EXISTS tenantgate.tenants (id text PRIMARY KEY, slug text UNIQUE NOT NULL, active bool NOT NULL DEFAULT true);
INSERT INTO tenantgate.tenants VALUES ('acme', 'acme', true), ('techstart', 'techstart', true), ('initech', 'initech', false)
ON CONFLICT (id) DO NOTHING;
SQL

step "starting tenantgate (postgres :$pg_port, redis :$redis_port, mongo :$mongo_port, admin :$admin_port)"
"$tg" check-config --config "$workdir/tenantgate.yaml" >/dev/null
"$tg" run --config "$workdir/tenantgate.yaml" 2>"$workdir/tenantgate.log" &
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
say "ready; registry: acme, techstart active, initech suspended"

acme=$("$tg" token --tenant acme --ttl 1h)
techstart=$("$tg" token --tenant techstart --ttl 1h)
initech=$("$tg" token --tenant initech --ttl 1h)
token_of() {
	case $1 in
	acme) printf '%s' "$acme" ;;
	techstart) printf '%s' "$techstart" ;;
	*) printf '%s' "$initech" ;;
	esac
}

# ragcore AS TENANT ARGS...: ragcore pointed at the sidecar, the tenant's
# token as its one credential. Nothing else tells it who it is.
ragcore_as() {
	local tenant=$1
	shift
	RAGCORE_POSTGRES="postgres://app@127.0.0.1:$pg_port/appdb?sslmode=disable" \
		RAGCORE_REDIS="redis://127.0.0.1:$redis_port/0" \
		RAGCORE_MONGO="mongodb://127.0.0.1:$mongo_port/ragcore" \
		RAGCORE_CREDENTIAL="$(token_of "$tenant")" \
		"$rc" "$@" 2>>"$workdir/ragcore.log"
}

step "ingesting the two corpora through tenantgate (industry-report.md is identical in both)"
say "(no Neo4j can run here: ragcore keeps its knowledge graph in PostgreSQL tables)"
for tenant in acme techstart; do
	say "$tenant: ragcore ingest ragcore/testdata/corpus/$tenant"
	ragcore_as "$tenant" ingest --quiet "ragcore/testdata/corpus/$tenant" | indent | indent
done

question="Which secret project is being built, and who runs the Orion Platform?"
step "both tenants ask the same question: \"$question\""
for tenant in acme techstart; do
	out=$(ragcore_as "$tenant" query --mode hybrid "$question")
	say "$tenant sources:"
	sed -n '/^Sources:/,$p' <<<"$out" | tail -n +2 | indent
	say "$tenant secret projects in its context: $(grep -o 'Project [A-Z][a-z]*' <<<"$out" | sort -u | paste -sd, - | sed 's/,/, /g')"
done

step "upstream, behind the sidecar: the same ids, kept apart per tenant"
psql -At -F ' ' "$owner_url" -c "SELECT '  postgres ragcore_chunk_vectors: tenant_id=' || tenant_id || ' rows=' || count(*) FROM ragcore_chunk_vectors GROUP BY tenant_id ORDER BY 1" | indent
for tenant in acme techstart; do
	say "  redis keys t:$tenant:ragcore:*: $(redis-cli -u "$TENANTGATE_TEST_REDIS_URL" --scan --pattern "t:$tenant:ragcore:*" | wc -l)"
done
say "  mongo: ragcore's database \"ragcore\" is ragcore__acme / ragcore__techstart upstream (database mode, {db}__{tenant})"

step "cross-tenant attempts are refused"
psql_as() {
	PGPASSWORD=$(token_of "$1") psql -X -At "host=127.0.0.1 port=$pg_port dbname=appdb user=app sslmode=disable" -c "$2" 2>&1 | head -n 1
}
say "acme psql> SELECT count(*) FROM ragcore_chunk_vectors"
say "    -> $(psql_as acme 'SELECT count(*) FROM ragcore_chunk_vectors') (its own rows only)"
say "acme psql> SELECT set_config('app.tenant_id', 'techstart', false)"
say "    -> $(psql_as acme "SELECT set_config('app.tenant_id', 'techstart', false)")"
say "acme psql> SET app.tenant_id = 'techstart'"
say "    -> $(psql_as acme "SET app.tenant_id = 'techstart'")"
say "even past the guard, as the proxy's own role on the server: SET app.tenant_id = 'techstart'; SELECT count(*) FROM ragcore_chunk_vectors"
say "    -> $(psql -X -At "postgres://tenantgate@$pg_hostport/appdb?sslmode=disable" -c "SET app.tenant_id = 'techstart'" -c 'SELECT count(*) FROM ragcore_chunk_vectors' 2>&1 | tail -n 1) rows (hardened mode: no signature for techstart)"
say "acme redis-cli> EVAL \"return redis.call('KEYS','*')\" 0"
say "    -> $(redis-cli -p "$redis_port" --no-auth-warning -a "$acme" EVAL "return redis.call('KEYS','*')" 0 2>&1 | head -n 1)"
say "acme redis-cli> KEYS *"
say "    -> $(redis-cli -p "$redis_port" --no-auth-warning -a "$acme" KEYS '*' 2>&1 | grep -c .) keys, all its own, without the t:acme: prefix"
say "acme redis-cli> KEYS t:techstart:*"
say "    -> $(redis-cli -p "$redis_port" --no-auth-warning -a "$acme" KEYS 't:techstart:*' 2>&1 | grep -c . || true) keys (the pattern is scoped to acme's keyspace)"
say "initech (suspended) ragcore status"
ragcore_as initech status >/dev/null && tg_die "the suspended tenant was served"
say "    -> $(tail -n 1 "$workdir/ragcore.log")"

step "deleting the shared document in acme leaves techstart's copy"
shared=$(ragcore_as acme status | awk '/industry-report/ {print $1; exit}')
ragcore_as acme delete "$shared" >/dev/null
say "acme deleted $shared"
for tenant in acme techstart; do
	n=$(ragcore_as "$tenant" query "Logistics Alliance market forecast 2030" --mode naive | grep -c "$shared" || true)
	say "$tenant: industry-report.md cited $n time(s)"
done

cat <<MSG

tenantgate is running (pid $tg_pid).
  metrics:   http://127.0.0.1:$admin_port/metrics   (also /healthz, /readyz)
  psql:      PGPASSWORD=<token> psql "host=127.0.0.1 port=$pg_port dbname=appdb user=app sslmode=disable"
  redis-cli: redis-cli -p $redis_port --user app --pass <token>
  mongosh:   mongosh "mongodb://app:<token>@127.0.0.1:$mongo_port/ragcore?authMechanism=PLAIN&authSource=%24external"
  ragcore:   RAGCORE_POSTGRES='postgres://app@127.0.0.1:$pg_port/appdb?sslmode=disable' \\
             RAGCORE_REDIS=redis://127.0.0.1:$redis_port/0 RAGCORE_MONGO=mongodb://127.0.0.1:$mongo_port/ragcore \\
             RAGCORE_CREDENTIAL=<token> $rc query "Who runs the Orion Platform?"
  registry:  PostgreSQL tenantgate.tenants (acme, techstart active; initech suspended), cached in Redis
  audit log: $workdir/audit.jsonl
  logs:      $workdir/tenantgate.log

Tokens (present them as the datastore password; they expire in an hour):
  acme:      $acme
  techstart: $techstart
  more:      TENANTGATE_JWT_SECRET=$TENANTGATE_JWT_SECRET $tg token --tenant acme --ttl 1h

MSG
curl -fsS "http://127.0.0.1:$admin_port/metrics" | grep -E '^tenantgate_(requests|refusals)_total\{' | grep -v ' 0$' | indent || true

if [[ -n $once ]]; then
	echo
	echo "--once: stopping."
	exit 0
elif [[ -n $run_for ]]; then
	sleep "$run_for"
else
	echo
	echo "Press Ctrl-C to stop."
	wait "$tg_pid"
fi
