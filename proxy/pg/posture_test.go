package pg

import (
	"context"
	"strings"
	"testing"
)

// pg audit reports each deliberately unsafe object, and nothing critical on
// the safe schema.
func TestCheckPosture(t *testing.T) {
	env := newPGEnv(t, nil)
	ctx := context.Background()
	role := proxyRole(t, env)
	proxyConn := connect(t, env.engine.opts.Upstream)

	clean, err := CheckPosture(ctx, proxyConn, PostureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if clean.Critical() || clean.Role != role {
		t.Fatalf("safe schema: role %s, findings %v", clean.Role, clean.Findings)
	}

	admin := env.admin()
	mustExec(t, admin, "GRANT pg_read_server_files TO "+role)
	files, err := CheckPosture(ctx, proxyConn, PostureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := files.UnsafeError(); !files.Critical() || !strings.Contains(err.Error(), "is a member of pg_read_server_files") {
		t.Fatalf("a role that reads server files passed: %v", files.Findings)
	}
	mustExec(t, admin, "REVOKE pg_read_server_files FROM "+role)

	for _, sql := range []string{
		"CREATE TABLE open_t (tenant_id text, id int PRIMARY KEY)",
		"CREATE TABLE owned_t (tenant_id text)",
		"ALTER TABLE owned_t OWNER TO " + role,
		"ALTER TABLE owned_t ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY p ON owned_t USING (tenant_id = current_setting('app.tenant_id'))",
		"CREATE TABLE nopolicy_t (tenant_id text)",
		"ALTER TABLE nopolicy_t ENABLE ROW LEVEL SECURITY",
		"CREATE TABLE leaky_t (tenant_id text)",
		"ALTER TABLE leaky_t ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY scoped ON leaky_t USING (tenant_id = current_setting('app.tenant_id'))",
		"CREATE POLICY everyone ON leaky_t FOR SELECT USING (true)",
		"CREATE VIEW items_v AS SELECT * FROM items",
		"CREATE VIEW items_safe_v WITH (security_invoker = true) AS SELECT * FROM items",
		"CREATE FUNCTION all_items() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM items'",
		"CREATE TABLE countries (code text PRIMARY KEY)",
	} {
		mustExec(t, admin, sql)
	}
	p, err := CheckPosture(ctx, proxyConn, PostureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	report := ""
	for _, f := range p.Findings {
		report += f.String() + "\n"
	}
	for _, want := range []string{
		"critical public.open_t: Row-Level Security is not enabled",
		`warning  public.open_t: unique index "open_t_pkey" (id) does not include tenant_id`,
		"critical public.owned_t: the role owns the table and RLS is not forced",
		"critical public.nopolicy_t: no policy FOR ALL",
		`critical public.leaky_t: permissive policy "everyone" does not test app.tenant_id`,
		"critical public.items_v: view over tenant tables without security_invoker",
		"critical public.all_items: SECURITY DEFINER function mentions tenant table items",
		"info     public.countries: shared table",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "items_safe_v") || strings.Contains(report, "public.items:") {
		t.Errorf("safe objects reported:\n%s", report)
	}

	// What `tenantgate run` checks at start, with the engine's credentials.
	p, err = env.engine.CheckPosture(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.UnsafeError(); !p.Critical() || !strings.Contains(err.Error(), "public.open_t: Row-Level Security is not enabled") {
		t.Fatalf("start-up check: %v", err)
	}

	super, err := CheckPosture(ctx, admin, PostureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !super.Critical() || !strings.Contains(super.Findings[0].Message, "superuser") {
		t.Fatalf("superuser not reported: %v", super.Findings)
	}
}
