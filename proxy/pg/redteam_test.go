package pg

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Red-team attacks through the real proxy: each must fail, leave A on its
// own tenant, and leave B's rows unseen and unchanged. rule "" means the
// server (not the guard) must refuse it, or it must be harmless.
func TestRedTeamAttacks(t *testing.T) {
	env := newPGEnv(t, poolOf(1))
	ctx := context.Background()
	a, b, before := env.seedSecrets()

	attacks := []struct{ sql, rule string }{
		// The proxy's own server-side prepared statements, reached by SQL EXECUTE.
		{"EXECUTE tenantgate_set('app.tenant_id', 'globex')", RuleReservedName},
		{`EXECUTE "tenantgate_set"('app.tenant_id', 'globex')`, RuleReservedName},
		{"EXECUTE TENANTGATE_SET('app.tenant_id', 'globex')", RuleReservedName},
		{"EXPLAIN ANALYZE EXECUTE tenantgate_set('app.tenant_id', 'globex')", RuleReservedName},
		{"SELECT 1; EXECUTE tenantgate_set('app.tenant_id', 'globex')", RuleReservedName},
		{"EXECUTE tenantgate_reset('app.tenant_id')", RuleReservedName},
		{"CLOSE tenantgate_p", RuleReservedName},
		{"FETCH ALL FROM tenantgate_p", RuleReservedName},
		{"DECLARE tenantgate_p CURSOR FOR SELECT 1", RuleReservedName},
		// set_config in every spelling and position.
		{`SELECT "set_config"('app.tenant_id', 'globex', false)`, RuleSetConfig},
		{"SELECT * FROM set_config('app.tenant_id', 'globex', false)", RuleSetConfig},
		{"SELECT * FROM ROWS FROM (pg_catalog.set_config('app.tenant_id', 'globex', false))", RuleSetConfig},
		{"COPY (SELECT set_config('app.tenant_id', 'globex', false)) TO STDOUT", RuleSetConfig},
		{"PREPARE p AS SELECT set_config('app.tenant_id', 'globex', false)", RuleSetConfig},
		{"DECLARE c CURSOR FOR SELECT set_config('app.tenant_id', 'globex', false)", RuleSetConfig},
		{"WITH u AS (UPDATE pg_catalog.pg_settings SET setting = 'globex' WHERE name = 'app.tenant_id' RETURNING 1) SELECT * FROM u", RuleSetConfig},
		{"CALL set_config('app.tenant_id', 'globex', false)", RuleSetConfig},
		{"SELECT query_to_xml_and_xmlschema('SELECT 1', true, true, '')", RuleDynamicSQL},
		{"SELECT dblink_exec('dbname=x', 'SELECT 1')", RuleServerAdmin},
		{"SELECT lo_get(1)", RuleLargeObject},
		{"SELECT pg_catalog.pg_read_binary_file('/etc/passwd')", RuleServerFiles},
		{"SELECT pg_ls_dir('.')", RuleServerFiles},
		// Other sessions' statement texts, and relations selected by name.
		{"SELECT query FROM pg_stat_activity", RuleActivity},
		{"SELECT query FROM pg_catalog.pg_stat_get_activity(NULL)", RuleActivity},
		{"SELECT pg_stat_get_backend_activity(1)", RuleActivity},
		{"SELECT table_to_xml('pg_stat_activity', true, true, '')", RuleDynamicSQL},
		{"SELECT schema_to_xml('pg_catalog', true, true, '')", RuleDynamicSQL},
		{"SELECT database_to_xml(true, true, '')", RuleDynamicSQL},
		// Multi-statement and reset-position rules.
		{"SELECT 1; SET app.tenant_id = 'globex'", RuleTenantSetting},
		{"RESET ALL; SELECT name FROM items", RuleResetPosition},
		{"DISCARD ALL; SELECT name FROM items", RuleResetPosition},
		{"RESET role; SELECT name FROM items", RuleResetPosition},
		// Role and setting changes.
		{"SET LOCAL role TO postgres", RuleRoleChange},
		{"SET LOCAL session_authorization TO postgres", RuleRoleChange},
		{`SET "APP".tenant_id TO 'globex'`, RuleTenantSetting},
		{"SET client_encoding = 'SJIS'", RuleLexing},
		{"SET standard_conforming_strings = off", RuleLexing},
		{"ALTER ROLE CURRENT_USER SET app.tenant_id = 'globex'", RuleTenantSetting},
		{"ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC", RuleRoleChange},
		// DDL that would run code later.
		{"CREATE RULE r AS ON SELECT TO items DO INSTEAD SELECT * FROM items", RuleDDL},
		{"CREATE TRIGGER t BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger()", RuleDDL},
		{"COMMENT ON TABLE items IS 'x'", RuleDDL},
		{"SECURITY LABEL ON TABLE items IS 'x'", RuleDDL},
		{"CREATE CAST (text AS int) WITH INOUT", RuleDDL},
		{"CREATE OPERATOR ### (FUNCTION = pg_catalog.set_config, LEFTARG = text, RIGHTARG = text)", RuleDDL},
		{"ALTER TABLE items DISABLE ROW LEVEL SECURITY", RuleDDL},
		{"CREATE TABLE stolen AS SELECT * FROM items", RuleDDL},
		{"SELECT * INTO stolen FROM items", RuleDDL},
		{"TRUNCATE items", RuleTruncate},
		{"COPY items FROM ''", RuleServerFiles}, // a file with an empty name, not STDIN
		{"COPY items TO /* x */ ''", RuleServerFiles},
		{"LOCK TABLE items", RuleTableLock},
		{"LOCK TABLE items IN SHARE MODE NOWAIT", RuleTableLock},
		{"PREPARE tenantgate_x AS SELECT 1", RuleReservedName},
		// Allowed by the guard, refused by PostgreSQL (the proxy's role is
		// neither superuser nor BYPASSRLS nor the owner).
		{"SET LOCAL row_security = off; SELECT name FROM items", ""},
		{"SET LOCAL session_replication_role = replica", ""},
		{"INSERT INTO items (tenant_id, id, name) VALUES ('globex', 5, 'forged')", ""},
		{"UPDATE items SET tenant_id = 'globex'", ""},
		{"INSERT INTO items (id, name) VALUES (1, 'x') ON CONFLICT (tenant_id, id) DO UPDATE SET tenant_id = 'globex'", ""},
		{"COPY items FROM STDIN", ""},
		{"CREATE POLICY open ON items USING (true)", RuleDDL},
		{"DEALLOCATE tenantgate_set", RuleReservedName},
	}
	for _, attack := range attacks {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			_, err := a.Exec(ctx, attack.sql, mode)
			if attack.rule == "" {
				if err == nil {
					t.Errorf("%q (mode %v) ran", attack.sql, mode)
				}
			} else {
				if err == nil {
					t.Fatalf("%q (mode %v) was not refused", attack.sql, mode)
				}
				assertRefused(t, err, attack.rule)
			}
			if got := tenantOf(t, a); got != tenantA {
				t.Fatalf("after %q A's tenant is %q", attack.sql, got)
			}
			assertOwnSecrets(t, a, b, attack.sql)
		}
	}
	if got := env.allRows(); !slices.Equal(got, before) {
		t.Fatalf("rows changed: %v", got)
	}
	// Planner statistics of an RLS table are hidden from the proxy's role.
	mustExec(t, env.admin(), "ANALYZE items")
	var n int
	if err := a.QueryRow(ctx, "SELECT count(*) FROM pg_stats WHERE tablename = 'items'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("pg_stats shows items' values to a tenant: %d, %v", n, err)
	}
}

// A tenant holding a table lock inside an open transaction must not stall
// another tenant: the modes that would are refused, and the ones allowed do
// not block B's writes.
func TestRedTeamTableLockDoesNotBlockOtherTenant(t *testing.T) {
	env := newPGEnv(t, poolOf(2))
	ctx := context.Background()
	a, b := env.client(tenantA), env.client(tenantB)
	for _, lock := range []string{"LOCK TABLE items", "LOCK TABLE items IN EXCLUSIVE MODE", "LOCK TABLE items IN ROW EXCLUSIVE MODE"} {
		tx, err := a.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, lockErr := tx.Exec(ctx, lock)
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err = b.Exec(wctx, "INSERT INTO items (id, name) VALUES (900, 'b-during-lock')")
		cancel()
		if err != nil {
			t.Fatalf("with A inside %q (%v), B's insert failed: %v", lock, lockErr, err)
		}
		if strings.Contains(lock, "ROW EXCLUSIVE") {
			if lockErr != nil {
				t.Fatalf("%q refused: %v", lock, lockErr)
			}
		} else {
			assertRefused(t, lockErr, RuleTableLock)
		}
		_ = tx.Rollback(ctx)
		mustExec(t, b, "DELETE FROM items WHERE id = 900")
		if got := names(t, a); slices.Contains(got, "b-during-lock") {
			t.Fatalf("A sees B's row: %v", got)
		}
	}
}

// The statement texts of other sessions of the proxy's role are other
// tenants' data: A must not read B's last statement from pg_stat_activity,
// whatever the spelling.
func TestRedTeamActivityLeak(t *testing.T) {
	env := newPGEnv(t, poolOf(2))
	ctx := context.Background()
	a, b := env.client(tenantA), env.client(tenantB)
	tx, err := a.Begin(ctx) // hold one server connection, so B runs on the other
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	mustExecTx(t, tx, "SELECT 1")
	if _, err := b.Exec(ctx, "INSERT INTO items (id, name) VALUES (7, 'b-literal-secret')", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"SELECT string_agg(query, '|') FROM pg_stat_activity",
		"SELECT string_agg(query, '|') FROM pg_stat_get_activity(NULL)",
		"SELECT table_to_xml('pg_catalog.pg_stat_activity', true, false, '')::text",
		"SELECT string_agg(statement, '|') FROM pg_prepared_statements",
		"SELECT string_agg(statement, '|') FROM pg_catalog.pg_prepared_statement()",
	} {
		var s *string
		_, err := tx.Exec(ctx, "SAVEPOINT s")
		if err != nil {
			t.Fatal(err)
		}
		err = tx.QueryRow(ctx, q, pgx.QueryExecModeSimpleProtocol).Scan(&s)
		if s != nil && strings.Contains(*s, "b-literal-secret") {
			t.Fatalf("%q shows B's statement: %s", q, *s)
		}
		if err == nil {
			t.Fatalf("%q was allowed", q)
		}
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT s"); err != nil {
			t.Fatal(err)
		}
	}
}

// Protocol-level attacks on the proxy's own statements and portals, and on
// the proxy's view of the session's state; after each, the session still
// holds A's tenant and sees only A's rows.
func TestRedTeamProtocol(t *testing.T) {
	env := newPGEnv(t, poolOf(1))
	a, b, before := env.seedSecrets()
	h, err := a.PgConn().Hijack()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Conn.Close()
	fe := h.Frontend
	// run sends msgs and reads to ReadyForQuery: the rows' first values and
	// the errors.
	run := func(msgs ...pgproto3.FrontendMessage) (rows []string, errs []string) {
		t.Helper()
		for _, m := range msgs {
			fe.Send(m)
		}
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			switch m := m.(type) {
			case *pgproto3.DataRow:
				rows = append(rows, string(m.Values[0]))
			case *pgproto3.ErrorResponse:
				errs = append(errs, m.Code+" "+m.Message)
			case *pgproto3.ReadyForQuery:
				return rows, errs
			}
		}
	}
	check := func(what string) {
		t.Helper()
		rows, errs := run(&pgproto3.Query{String: "SELECT current_setting('app.tenant_id') UNION ALL (SELECT name FROM items ORDER BY id)"})
		if len(errs) != 0 || !slices.Equal(rows, []string{tenantA, "a-secret"}) {
			t.Fatalf("after %s: rows %v, errors %v", what, rows, errs)
		}
	}
	check("nothing")
	params := [][]byte{[]byte("app.tenant_id"), []byte(tenantB)}
	attacks := []struct {
		name string
		msgs []pgproto3.FrontendMessage
	}{
		{"Bind of the proxy's set_config statement", []pgproto3.FrontendMessage{
			&pgproto3.Bind{PreparedStatement: stmtSetConfig, Parameters: params}, &pgproto3.Execute{}, &pgproto3.Sync{}}},
		{"Describe of the proxy's statement", []pgproto3.FrontendMessage{
			&pgproto3.Describe{ObjectType: 'S', Name: stmtSetConfig}, &pgproto3.Sync{}}},
		{"Parse of SQL EXECUTE of the proxy's statement", []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: "EXECUTE tenantgate_set('app.tenant_id', 'globex')"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}}},
		{"Bind into the proxy's portal", []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: "SELECT 1"}, &pgproto3.Bind{DestinationPortal: portalProxy}, &pgproto3.Execute{Portal: portalProxy}, &pgproto3.Sync{}}},
		{"Execute of the proxy's portal", []pgproto3.FrontendMessage{
			&pgproto3.Execute{Portal: portalProxy}, &pgproto3.Sync{}}},
		{"FunctionCall of set_config", []pgproto3.FrontendMessage{
			&pgproto3.FunctionCall{Function: 2078, Arguments: [][]byte{[]byte("app.tenant_id"), []byte(tenantB), {0}}}}},
		{"Parse of set_config with the simple query after it", []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: "SELECT set_config('app.tenant_id', 'globex', false)"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}}},
		{"RESET ALL bound to a portal, FETCHed by SQL", []pgproto3.FrontendMessage{
			&pgproto3.Query{String: "BEGIN"}, &pgproto3.Parse{Query: "RESET ALL"}, &pgproto3.Bind{DestinationPortal: "p"}, &pgproto3.Sync{},
			&pgproto3.Query{String: "FETCH ALL FROM p"}, &pgproto3.Query{String: "ROLLBACK"}}},
		{"RESET ALL in a pipeline, then a failing statement", []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: "RESET ALL"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Parse{Query: "SELECT 1/0"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}}},
		{"SAVEPOINT, RESET ALL, ROLLBACK TO", []pgproto3.FrontendMessage{
			&pgproto3.Query{String: "BEGIN; SAVEPOINT s; RESET ALL"}, &pgproto3.Query{String: "SELECT 1"},
			&pgproto3.Query{String: "ROLLBACK TO SAVEPOINT s"}, &pgproto3.Query{String: "COMMIT"}}},
	}
	for _, attack := range attacks {
		// Each message batch ends in a Sync, Query or FunctionCall: read
		// one ReadyForQuery per batch.
		var batch []pgproto3.FrontendMessage
		for _, m := range attack.msgs {
			batch = append(batch, m)
			switch m.(type) {
			case *pgproto3.Sync, *pgproto3.Query, *pgproto3.FunctionCall:
				run(batch...)
				batch = nil
			}
		}
		check(attack.name)
	}
	if got := names(t, b); !slices.Equal(got, []string{"b-secret"}) {
		t.Fatalf("B sees %v", got)
	}
	if got := env.allRows(); !slices.Equal(got, before) {
		t.Fatalf("rows changed: %v", got)
	}
}
