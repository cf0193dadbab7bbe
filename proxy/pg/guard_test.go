package pg

import (
	"testing"
)

func newTestGuard(transaction, ddl bool) *Guard {
	return NewGuard(GuardOptions{TenantSetting: "app.tenant_id", TransactionMode: transaction, AllowDDL: ddl})
}

// guardCases are statements and the rule that refuses them ("" = allowed),
// under transaction pooling with DDL refused.
var guardCases = []struct {
	sql  string
	rule string
}{
	// Ordinary statements.
	{"SELECT * FROM items WHERE id = $1", ""},
	{"INSERT INTO items (id, name) VALUES (1, 'x') ON CONFLICT (tenant_id, id) DO UPDATE SET name = excluded.name", ""},
	{"UPDATE items SET name = 'y' WHERE id = 1 RETURNING *", ""},
	{"DELETE FROM items WHERE id = 1", ""},
	{"WITH x AS (SELECT 1) SELECT * FROM x", ""},
	{"BEGIN; SELECT 1; COMMIT", ""},
	{"SELECT current_setting('app.tenant_id')", ""},
	{"SET LOCAL statement_timeout = '5s'", ""},
	{"SET statement_timeout = '5s'", ""},
	{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", ""},
	{"SHOW app.tenant_id", ""},
	{"COPY items FROM STDIN", ""},
	{"COPY (SELECT * FROM items) TO STDOUT", ""},
	{"COPY items (id, name) FROM STDIN WITH (FORMAT csv)", ""},
	{"COPY (SELECT 'x', '/etc/passwd') TO /* out */ STDOUT", ""},
	{"COPY items FROM ''", RuleServerFiles},
	{"COPY items TO /* x */ ''", RuleServerFiles},
	{"COPY (SELECT 1) TO ''", RuleServerFiles},
	{"COPY items FROM '/etc/passwd'", RuleServerFiles},
	{"COPY items FROM U&''", RuleServerFiles},
	{"LOCK TABLE items IN ROW EXCLUSIVE MODE", ""},
	{"LOCK items IN SHARE UPDATE EXCLUSIVE MODE NOWAIT", ""},
	{"LOCK TABLE items IN ACCESS SHARE MODE", ""},
	// Table locks that block other tenants.
	{"LOCK TABLE items", RuleTableLock},
	{"lock items in access exclusive mode", RuleTableLock},
	{"LOCK TABLE ONLY items IN EXCLUSIVE MODE", RuleTableLock},
	{"LOCK TABLE items IN SHARE ROW EXCLUSIVE MODE", RuleTableLock},
	{"LOCK TABLE items, other IN SHARE MODE", RuleTableLock},
	{"BEGIN; LOCK /* x */ TABLE items; COMMIT", RuleTableLock},
	{"RESET ALL", ""},
	{"DISCARD ALL", ""},
	{"RESET ROLE", ""},
	{"SET ROLE NONE", ""},
	{"SET SESSION AUTHORIZATION DEFAULT", ""},
	{"UNLISTEN *", ""},
	{"DECLARE c CURSOR FOR SELECT 1", ""},
	{"SELECT pg_advisory_xact_lock(1)", ""},
	{"", ""},
	{"-- only a comment", ""},

	// The tenant setting, in every spelling.
	{"SET app.tenant_id = 'other'", RuleTenantSetting},
	{"SET LOCAL app.tenant_id = 'other'", RuleTenantSetting},
	{"SET SESSION app.tenant_id TO 'other'", RuleTenantSetting},
	{`SET "app"."tenant_id" = 'other'`, RuleTenantSetting},
	{`SET "app".tenant_id = 'other'`, RuleTenantSetting},
	{"SET APP.TENANT_ID = 'other'", RuleTenantSetting},
	{`SET "APP"."TENANT_ID" = 'other'`, RuleTenantSetting},
	{`SET U&"\0061pp".tenant_id = 'other'`, RuleTenantSetting},
	{`SET U&"app!002etenant_id" UESCAPE '!' = 'other'`, RuleTenantSetting},
	{"SET /* hi */ app . /* there */ tenant_id = 'other'", RuleTenantSetting},
	{"SET\napp.tenant_id\n=\n'other'", RuleTenantSetting},
	{"SET app.other_thing = 'x'", RuleTenantSetting},
	{"SET app.tenant_id TO DEFAULT", RuleTenantSetting},
	{"SET app.tenant_id FROM CURRENT", RuleTenantSetting},
	{"RESET app.tenant_id", ""},
	{`RESET "APP".TENANT_ID`, ""},
	{"RESET app.tenant_id; SELECT 1", RuleResetPosition},
	{"SELECT 1; SET app.tenant_id = 'x'", RuleTenantSetting},

	// set_config anywhere.
	{"SELECT set_config('app.tenant_id', 'other', false)", RuleSetConfig},
	{"SELECT pg_catalog.set_config('app.tenant_id', 'other', false)", RuleSetConfig},
	{`SELECT "pg_catalog"."set_config"('app.tenant_id', 'other', false)`, RuleSetConfig},
	{"SELECT SET_CONFIG('app.tenant_id', 'other', false)", RuleSetConfig},
	{"SELECT set_config('search_path', 'public', false)", RuleSetConfig},
	{"WITH x AS (SELECT set_config('app.tenant_id', 'o', false)) SELECT * FROM items, x", RuleSetConfig},
	{"SELECT * FROM items WHERE name = (SELECT set_config('app.tenant_id', 'o', true))", RuleSetConfig},
	{"SELECT lower(set_config('app.tenant_id', 'o', false))", RuleSetConfig},
	{"SELECT * FROM set_config('app.tenant_id', 'o', false)", RuleSetConfig},
	{"INSERT INTO items (id, name) VALUES (1, set_config('app.tenant_id', 'o', false))", RuleSetConfig},
	{"UPDATE items SET name = 'x' WHERE set_config('app.tenant_id', 'o', false) IS NOT NULL", RuleSetConfig},
	{"SELECT CASE WHEN true THEN set_config('app.tenant_id', 'o', false) END", RuleSetConfig},
	{"SELECT /* x */ set_config /* y */ ('app.tenant_id', 'o', false)", RuleSetConfig},
	{"EXPLAIN ANALYZE SELECT set_config('app.tenant_id', 'o', false)", RuleSetConfig},
	{"COPY (SELECT set_config('app.tenant_id', 'o', false)) TO STDOUT", RuleSetConfig},
	{"PREPARE p AS SELECT set_config('app.tenant_id', 'o', false)", RuleSetConfig},
	{"DECLARE c CURSOR FOR SELECT set_config('app.tenant_id', 'o', false)", RuleSetConfig},
	{"UPDATE pg_settings SET setting = 'other' WHERE name = 'app.tenant_id'", RuleSetConfig},
	{"UPDATE pg_catalog.pg_settings SET setting = 'x' WHERE name = 'search_path'", RuleSetConfig},
	{"WITH u AS (UPDATE pg_settings SET setting = 'o' WHERE name = 'app.tenant_id' RETURNING 1) SELECT * FROM u", RuleSetConfig},
	{"SELECT name, setting FROM pg_settings", ""},
	{"SELECT query_to_xml('select 1', true, true, '')", RuleDynamicSQL},
	{"SELECT ts_stat('select v from t')", RuleDynamicSQL},

	// Roles.
	{"SET ROLE postgres", RuleRoleChange},
	{"SET SESSION AUTHORIZATION postgres", RuleRoleChange},
	{"SET LOCAL ROLE postgres", RuleRoleChange},
	{"ALTER ROLE me SET app.tenant_id = 'x'", RuleTenantSetting},
	{"ALTER DATABASE db SET app.tenant_id = 'x'", RuleTenantSetting},
	{"GRANT SELECT ON items TO public", RuleRoleChange},

	// Code and server access.
	{"DO $$ BEGIN PERFORM 1; END $$", RuleCode},
	{"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'", RuleCode},
	{"CREATE OR REPLACE PROCEDURE p() LANGUAGE sql AS 'select 1'", RuleCode},
	{"LOAD 'auto_explain'", RuleCode},
	{"ALTER SYSTEM SET work_mem = '1GB'", RuleServerAdmin},
	{"COPY items TO PROGRAM 'cat'", RuleServerFiles},
	{"COPY items FROM '/etc/passwd'", RuleServerFiles},
	{"COPY items TO '/tmp/x'", RuleServerFiles},
	{"SELECT lo_import('/etc/passwd')", RuleLargeObject},
	{"SELECT lo_export(1, '/tmp/x')", RuleLargeObject},
	{"SELECT lo_get(1)", RuleLargeObject},
	{"SELECT lo_from_bytea(0, 'x')", RuleLargeObject},
	{"SELECT loread(lo_open(1, 262144), 10)", RuleLargeObject},
	{"SELECT lowrite(0, 'x')", RuleLargeObject},
	{"SELECT pg_read_file('/etc/passwd')", RuleServerFiles},
	{"SELECT pg_read_binary_file('/etc/passwd')", RuleServerFiles},
	{"SELECT * FROM pg_ls_dir('.')", RuleServerFiles},
	{"SELECT pg_terminate_backend(1)", RuleServerAdmin},
	{"SELECT pg_cancel_backend(1)", RuleServerAdmin},
	{"SELECT * FROM dblink('x', 'select 1') AS t(a int)", RuleServerAdmin},
	{"SELECT dblink_exec('x', 'select 1')", RuleServerAdmin},
	{"PREPARE TRANSACTION 'x'", RuleServerAdmin},
	{"COMMIT PREPARED 'x'", RuleServerAdmin},
	{"TRUNCATE items", RuleTruncate},

	// Notifications.
	{"LISTEN chan", RuleNotify},
	{"NOTIFY chan, 'x'", RuleNotify},
	{"UNLISTEN chan", RuleNotify},
	{"SELECT pg_notify('chan', 'x')", RuleNotify},

	// State that outlives a pooled transaction.
	{"DECLARE c CURSOR WITH HOLD FOR SELECT 1", RuleSessionState},
	{"SELECT pg_advisory_lock(1)", RuleSessionState},
	{"SELECT pg_try_advisory_lock_shared(1)", RuleSessionState},

	// DDL.
	{"CREATE TABLE t (id int)", RuleDDL},
	{"CREATE TEMP TABLE t (id int)", RuleDDL},
	{"ALTER TABLE items DISABLE ROW LEVEL SECURITY", RuleDDL},
	{"DROP TABLE items", RuleDDL},
	{"DROP POLICY tenant_isolation ON items", RuleDDL},
	{"CREATE TABLE IF NOT EXISTS t (id int)", RuleDDL},
	{"SELECT * INTO copy FROM items", RuleDDL},
	{"CREATE TABLE c AS SELECT * FROM items", RuleDDL},
	{"VACUUM items", RuleDDL},

	// Settings that change how the server reads statements.
	{"SET client_encoding = 'SJIS'", RuleLexing},
	{"SET NAMES 'BIG5'", RuleLexing},
	{"SET standard_conforming_strings = off", RuleLexing},
	{"SET LOCAL standard_conforming_strings TO off", RuleLexing},
	{"SET backslash_quote = on", RuleLexing},
	{"RESET client_encoding", ""},

	// Reserved names and parsing.
	{"PREPARE tenantgate_set AS SELECT 1", RuleReservedName},
	{"DEALLOCATE tenantgate_set", RuleReservedName},
	{"SELEC 1", RuleUnparsable},
	{"SELECT 'unterminated", RuleUnparsable},
	{"RESET ALL; SELECT 1", RuleResetPosition},
}

func TestGuard(t *testing.T) {
	g := newTestGuard(true, false)
	for _, tc := range guardCases {
		v := g.Check(tc.sql)
		got := ""
		if v.Refusal != nil {
			got = v.Refusal.Rule
		}
		if got != tc.rule {
			t.Errorf("%q: rule %q, want %q (%v)", tc.sql, got, tc.rule, v.Refusal)
		}
		if v.Refusal != nil && v.Refusal.Code != "42501" && v.Refusal.Rule != RuleUnparsable {
			t.Errorf("%q: SQLSTATE %s, want 42501", tc.sql, v.Refusal.Code)
		}
	}
}

func TestGuardModes(t *testing.T) {
	cases := []struct {
		sql              string
		transaction, ddl bool
		rule             string
		effects          Effect
		ifNotExists      string
	}{
		{sql: "CREATE TABLE t (id int)", ddl: true},
		{sql: "CREATE TEMP TABLE t (id int)", transaction: true, ddl: true, rule: RuleSessionState},
		{sql: "CREATE TEMP TABLE t (id int)", ddl: true},
		{sql: "SELECT pg_advisory_lock(1)"},
		{sql: "DECLARE c CURSOR WITH HOLD FOR SELECT 1"},
		{sql: "SET app.tenant_id = 'x'", ddl: true, rule: RuleTenantSetting},
		{sql: "SET search_path = public", transaction: true, effects: EffectPin},
		{sql: "PREPARE p AS SELECT 1", transaction: true, effects: EffectPin},
		{sql: "RESET ALL", transaction: true, effects: EffectReset},
		{sql: "RESET timezone", transaction: true, effects: EffectReset},
		{sql: "DISCARD ALL", transaction: true, effects: EffectReset | EffectDeallocate},
		{sql: "DEALLOCATE ALL", transaction: true, effects: EffectDeallocate},
		{sql: "COPY items FROM STDIN", transaction: true, effects: EffectCopyIn},
		{sql: "SELECT 1; COPY items (id) FROM STDIN WITH (FORMAT csv)", effects: EffectCopyIn},
		{sql: "COPY items TO STDOUT", transaction: true},
		{sql: "CREATE TABLE IF NOT EXISTS s.t (id int)", rule: RuleDDL, ifNotExists: "relation s.t CREATE TABLE"},
		{sql: "CREATE INDEX IF NOT EXISTS i ON t (id)", rule: RuleDDL, ifNotExists: "relation .i CREATE INDEX"},
		{sql: "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON s.t (id)", rule: RuleDDL, ifNotExists: "relation s.i CREATE INDEX"},
		{sql: "CREATE EXTENSION IF NOT EXISTS vector", rule: RuleDDL, ifNotExists: "extension .vector CREATE EXTENSION"},
		{sql: "SELECT 1; CREATE TABLE IF NOT EXISTS t (id int)", rule: RuleDDL},
		{sql: "CREATE TABLE IF NOT EXISTS t (id int)", ddl: true},
		{sql: "ALTER TABLE items DISABLE ROW LEVEL SECURITY", ddl: true, rule: RuleRowSecurity},
		{sql: "ALTER TABLE items NO FORCE ROW LEVEL SECURITY", ddl: true, rule: RuleRowSecurity},
		{sql: "ALTER TABLE items OWNER TO me", ddl: true, rule: RuleRowSecurity},
		{sql: "ALTER TABLE items ADD COLUMN x int, DISABLE ROW LEVEL SECURITY", ddl: true, rule: RuleRowSecurity},
		{sql: "CREATE POLICY open ON items USING (true)", ddl: true, rule: RuleRowSecurity},
		{sql: "ALTER POLICY tenant_isolation ON items USING (true)", ddl: true, rule: RuleRowSecurity},
		{sql: "DROP POLICY tenant_isolation ON items", ddl: true, rule: RuleRowSecurity},
		{sql: "ALTER FUNCTION f() SET app.tenant_id = 'x'", ddl: true, rule: RuleTenantSetting},
		{sql: "ALTER FUNCTION f() SET search_path = public", ddl: true},
		{sql: "ALTER TABLE items ADD COLUMN x int", ddl: true},
		{sql: "EXECUTE tenantgate_set('app.tenant_id', 'x')", rule: RuleReservedName},
		{sql: "CREATE TABLE t AS EXECUTE tenantgate_set('app.tenant_id', 'x')", ddl: true, rule: RuleReservedName},
		{sql: "EXECUTE mine(1)", transaction: true},
		{sql: "FETCH 1 FROM tenantgate_p", rule: RuleReservedName},
		{sql: "SELECT query FROM pg_stat_activity", ddl: true, rule: RuleActivity},
		{sql: "SELECT table_to_xml('items', true, true, '')", rule: RuleDynamicSQL},
	}
	for _, tc := range cases {
		v := newTestGuard(tc.transaction, tc.ddl).Check(tc.sql)
		rule := ""
		if v.Refusal != nil {
			rule = v.Refusal.Rule
		}
		ine := ""
		if v.IfNotExists != nil {
			ine = v.IfNotExists.Kind + " " + v.IfNotExists.Schema + "." + v.IfNotExists.Name + " " + v.IfNotExists.Tag
		}
		if rule != tc.rule || v.Effects != tc.effects || ine != tc.ifNotExists {
			t.Errorf("%q (transaction %v, ddl %v): rule %q effects %b ifNotExists %q; want %q %b %q",
				tc.sql, tc.transaction, tc.ddl, rule, v.Effects, ine, tc.rule, tc.effects, tc.ifNotExists)
		}
	}
}
