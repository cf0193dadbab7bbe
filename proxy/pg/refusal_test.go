package pg

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// assertRefused checks err is the proxy's refusal by rule.
func assertRefused(t *testing.T, err error, rule string) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a refusal [%s]", err, rule)
	}
	if !strings.Contains(pe.Message, "["+rule+"]") {
		t.Fatalf("refusal %s %q, want rule %s", pe.Code, pe.Message, rule)
	}
}

// Every guard category is refused through the proxy, with both protocols;
// the session stays usable and the other tenant's rows are neither seen nor
// changed.
func TestRefusalsThroughProxy(t *testing.T) {
	env := newPGEnv(t, poolOf(1))
	ctx := context.Background()
	a, b, before := env.seedSecrets()

	attacks := []struct{ sql, rule string }{
		{"SET app.tenant_id = 'globex'", RuleTenantSetting},
		{`SET "app"."tenant_id" = 'globex'`, RuleTenantSetting},
		{`SET U&"\0061pp".tenant_id = 'globex'`, RuleTenantSetting},
		{"SET /* x */ APP.TENANT_ID /* y */ TO 'globex'", RuleTenantSetting},
		{"SET LOCAL app.tenant_id = 'globex'", RuleTenantSetting},
		{"RESET app.tenant_id; SELECT name FROM items", RuleResetPosition},
		{"SELECT set_config('app.tenant_id', 'globex', false)", RuleSetConfig},
		{"WITH x AS (SELECT pg_catalog.set_config('app.tenant_id', 'globex', false)) SELECT name FROM items, x", RuleSetConfig},
		{"SELECT name FROM items WHERE id = length(set_config('app.tenant_id', 'globex', false))", RuleSetConfig},
		{"UPDATE pg_settings SET setting = 'globex' WHERE name = 'app.tenant_id'", RuleSetConfig},
		{"SELECT * FROM query_to_xml('SELECT set_config(''app.tenant_id'', ''globex'', false)', true, true, '')", RuleDynamicSQL},
		{"SET ROLE postgres", RuleRoleChange},
		{"SET SESSION AUTHORIZATION postgres", RuleRoleChange},
		{"DO $$ BEGIN PERFORM set_config('app.tenant_id', 'globex', false); END $$", RuleCode},
		{"CREATE FUNCTION f() RETURNS text LANGUAGE sql AS 'select 1'", RuleCode},
		{"LOAD 'auto_explain'", RuleCode},
		{"ALTER SYSTEM SET work_mem = '1GB'", RuleServerAdmin},
		{"COPY items TO PROGRAM 'cat'", RuleServerFiles},
		{"COPY items FROM '/etc/passwd'", RuleServerFiles},
		{"SELECT lo_import('/etc/passwd')", RuleLargeObject},
		{"SELECT pg_read_file('/etc/passwd')", RuleServerFiles},
		{"SELECT pg_terminate_backend(1)", RuleServerAdmin},
		{"PREPARE TRANSACTION 'x'", RuleServerAdmin},
		{"LISTEN chan", RuleNotify},
		{"NOTIFY chan", RuleNotify},
		{"DECLARE c CURSOR WITH HOLD FOR SELECT * FROM items", RuleSessionState},
		{"SELECT pg_advisory_lock(1)", RuleSessionState},
		{"CREATE TEMP TABLE t (id int)", RuleDDL},
		{"ALTER TABLE items NO FORCE ROW LEVEL SECURITY", RuleDDL},
		{"DROP POLICY tenant_isolation ON items", RuleDDL},
		{"TRUNCATE items", RuleTruncate},
		{"SELEC name FROM items", RuleUnparsable},
	}
	for _, attack := range attacks {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			_, err := a.Exec(ctx, attack.sql, mode)
			assertRefused(t, err, attack.rule)
			assertOwnSecrets(t, a, b, attack.sql)
		}
	}
	if got := env.allRows(); !slices.Equal(got, before) {
		t.Fatalf("rows changed: %v", got)
	}
	if !strings.Contains(env.auditLog(), `"reason":"set_config"`) {
		t.Fatal("refusals are not audited")
	}
}

// A refusal inside a transaction fails it as a server error would, and
// answers in order within a pipeline.
func TestRefusalInTransactionAndPipeline(t *testing.T) {
	env := newPGEnv(t, poolOf(1))
	ctx := context.Background()
	a := env.client(tenantA)
	tx, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustExecTx(t, tx, "INSERT INTO items (id, name) VALUES (1, 'x')")
	_, err = tx.Exec(ctx, "SET app.tenant_id = 'globex'")
	assertRefused(t, err, RuleTenantSetting)
	_, err = tx.Exec(ctx, "SELECT 1")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "25P02" {
		t.Fatalf("after a refusal the transaction is not aborted: %v", err)
	}
	_ = tx.Rollback(ctx)
	if got := names(t, a); len(got) != 0 {
		t.Fatalf("rolled-back insert visible: %v", got)
	}

	// A pipeline: the refused statement's error comes in its place; the
	// statements after it are skipped to the Sync, as PostgreSQL does.
	a = env.clientMode(tenantA, pgx.QueryExecModeExec) // no separate prepare round
	batch := &pgx.Batch{}
	batch.Queue("SELECT 1")
	batch.Queue("SELECT set_config('app.tenant_id', 'globex', false)")
	batch.Queue("SELECT 3")
	br := a.SendBatch(ctx, batch)
	var one int
	if err := br.QueryRow().Scan(&one); err != nil || one != 1 {
		t.Fatalf("first: %v %v", one, err)
	}
	_, err = br.Exec()
	assertRefused(t, err, RuleSetConfig)
	if _, err := br.Exec(); err == nil {
		t.Fatal("the statement after a refusal ran")
	}
	_ = br.Close()
	if tenantOf(t, a) != tenantA {
		t.Fatal("tenant changed")
	}
}

// CREATE ... IF NOT EXISTS of an existing object is answered as PostgreSQL
// would; of a missing one, refused pointing at pg migrate.
func TestIdempotentDDL(t *testing.T) {
	env := newPGEnv(t, nil)
	ctx := context.Background()
	a := env.client(tenantA)
	var notices []string
	cfg, err := pgx.ParseConfig(env.url(tenantA))
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Code+" "+n.Message) }
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tag, err := c.Exec(ctx, "CREATE TABLE IF NOT EXISTS items (tenant_id text, id int, name text)")
	if err != nil || tag.String() != "CREATE TABLE" {
		t.Fatalf("existing table: %v, %v", tag, err)
	}
	if len(notices) != 1 || !strings.Contains(notices[0], `42P07 relation "items" already exists, skipping`) {
		t.Fatalf("notices = %v", notices)
	}
	for sql, tag := range map[string]string{
		"CREATE INDEX IF NOT EXISTS items_pkey ON items (id)":                     "CREATE INDEX",
		"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS items_pkey ON items (id)": "CREATE INDEX",
		"CREATE EXTENSION IF NOT EXISTS plpgsql":                                  "CREATE EXTENSION",
	} {
		got, err := c.Exec(ctx, sql)
		if err != nil || got.String() != tag {
			t.Fatalf("%s: %v, %v", sql, got, err)
		}
	}
	_, err = a.Exec(ctx, "CREATE TABLE IF NOT EXISTS fresh (id int)")
	assertRefused(t, err, RuleDDL)
	if !strings.Contains(err.Error(), "tenantgate pg migrate") {
		t.Fatalf("refusal does not point at pg migrate: %v", err)
	}
	mustExec(t, a, "SELECT 1")
}
