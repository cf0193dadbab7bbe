package pg

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// pg migrate turns a plain single-tenant table into a tenant-scoped one
// that an unchanged app keeps using through the proxy.
func TestMigratePlainTable(t *testing.T) {
	env := newPGEnv(t, nil)
	ctx := context.Background()
	admin := env.admin()
	mustExec(t, admin, "CREATE TABLE notes (id int PRIMARY KEY, body text UNIQUE)")
	mustExec(t, admin, "INSERT INTO notes VALUES (1, 'old one'), (2, 'old two')")
	mustExec(t, admin, "GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO "+proxyRole(t, env))

	if _, err := PlanMigration(ctx, admin, MigrateOptions{Table: "notes"}); err == nil || !strings.Contains(err.Error(), "--tenant") {
		t.Fatalf("rows without a tenant: %v", err)
	}
	plan, err := PlanMigration(ctx, admin, MigrateOptions{Table: "notes", ExistingTenant: tenantA})
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyMigration(ctx, admin, plan, nil); err != nil {
		t.Fatal(err)
	}

	posture, err := CheckPosture(ctx, connect(t, env.engine.opts.Upstream), PostureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if posture.Critical() {
		t.Fatalf("migrated schema fails the audit: %v", posture.Findings)
	}

	a, b := env.client(tenantA), env.client(tenantB)
	bodies := func(c *pgx.Conn) []string {
		rows, err := c.Query(ctx, "SELECT body FROM notes ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := bodies(a); !slices.Equal(got, []string{"old one", "old two"}) {
		t.Fatalf("A sees %v", got)
	}
	if got := bodies(b); len(got) != 0 {
		t.Fatalf("B sees %v", got)
	}
	// Same key and same unique value in another tenant.
	mustExec(t, b, "INSERT INTO notes (id, body) VALUES (1, 'old one')")
	if got := bodies(b); !slices.Equal(got, []string{"old one"}) {
		t.Fatalf("B sees %v", got)
	}

	again, err := PlanMigration(ctx, admin, MigrateOptions{Table: "notes"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range again {
		if strings.Contains(s, "ADD COLUMN") || strings.Contains(s, "ADD CONSTRAINT") {
			t.Fatalf("second plan is not idempotent: %s", s)
		}
	}
	if err := ApplyMigration(ctx, admin, again, nil); err != nil {
		t.Fatal(err)
	}
	if got := bodies(a); !slices.Equal(got, []string{"old one", "old two"}) {
		t.Fatalf("after re-applying A sees %v", got)
	}
}

// proxyRole is the role the env's proxy connects as.
func proxyRole(t *testing.T, env *pgEnv) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(env.engine.opts.Upstream)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.User
}
