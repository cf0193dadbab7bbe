package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantgate/tenantgate/internal/testutil"
)

// newAuditDB is a fresh database with a plain table notes (one row) and a
// tenant table leaky without RLS, and a non-owner role that may use both;
// it returns the owner's connection and URL and the role's URL.
func newAuditDB(t *testing.T) (owner *pgx.Conn, ownerURL, roleURL string) {
	t.Helper()
	ownerURL = testutil.NewPostgresDB(t)
	ctx := context.Background()
	owner, err := pgx.Connect(ctx, ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = owner.Close(context.Background()) })
	role := testutil.UniqueName("tg_app_")
	for _, stmt := range []string{
		"CREATE TABLE notes (id int PRIMARY KEY, body text)",
		"INSERT INTO notes VALUES (1, 'first')",
		"CREATE TABLE leaky (id int PRIMARY KEY, tenant_id text)",
		fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER NOBYPASSRLS", role),
		fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %s", role),
	} {
		if _, err := owner.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() {
		// The database is dropped by testutil; the role is cluster-wide.
		admin, err := pgx.Connect(context.Background(), testutil.PostgresURL(t))
		if err == nil {
			defer admin.Close(context.Background())
			_, _ = admin.Exec(context.Background(), "DROP OWNED BY "+role)
			_, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
		}
	})
	u, err := url.Parse(ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	return owner, ownerURL, u.String()
}

// TestPGAuditAndMigrate: audit reports an unsafe table and exits 1; migrate
// turns a plain single-tenant table into a tenant-scoped one, after which the
// audit passes.
func TestPGAuditAndMigrate(t *testing.T) {
	owner, ownerURL, roleURL := newAuditDB(t)
	ctx := context.Background()
	path := writeConfig(t, fmt.Sprintf("jwt: {secret: %s}\ntenants: [{id: acme}]\npostgres: {listen: %q, upstream: %q}\n",
		testSecret, freeAddr(t), roleURL))

	code, out, errOut := runCLI("pg", "audit", "--config", path)
	if code != 1 || !strings.Contains(out, "leaky") || !strings.Contains(out, "critical") {
		t.Fatalf("audit of an unsafe schema: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	if _, err := owner.Exec(ctx, "DROP TABLE leaky"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI("pg", "migrate", "--config", path, "--table", "notes", "--url", ownerURL, "--tenant", "acme")
	if code != 0 || !strings.Contains(out, "ENABLE ROW LEVEL SECURITY") {
		t.Fatalf("migrate (plan): exit %d\n%s\n%s", code, out, errOut)
	}
	var rls bool
	if err := owner.QueryRow(ctx, "SELECT relrowsecurity FROM pg_class WHERE relname = 'notes'").Scan(&rls); err != nil || rls {
		t.Fatalf("migrate without --apply changed the table (rls=%v, %v)", rls, err)
	}
	code, _, errOut = runCLI("pg", "migrate", "--config", path, "--table", "notes", "--url", ownerURL, "--tenant", "acme", "--apply")
	if code != 0 {
		t.Fatalf("migrate --apply: exit %d: %s", code, errOut)
	}
	code, out, errOut = runCLI("pg", "audit", "--config", path)
	if code != 0 || !strings.Contains(out, "ok: no critical findings") {
		t.Fatalf("audit after migrate: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	var tenant string
	if err := owner.QueryRow(ctx, "SELECT tenant_id FROM notes WHERE id = 1").Scan(&tenant); err != nil || tenant != "acme" {
		t.Errorf("existing row's tenant = %q, %v; want acme", tenant, err)
	}
}

func TestPGUsage(t *testing.T) {
	if code, _, errOut := runCLI("pg", "drop"); code == 0 || !strings.Contains(errOut, `unknown command "drop"`) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	path := writeConfig(t, "jwt: {secret: "+testSecret+"}\n")
	if code, _, errOut := runCLI("pg", "audit", "--config", path); code == 0 || !strings.Contains(errOut, "no postgres section") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// TestPGMigrateHardened: with postgres.tenant_signature, migrate creates the
// signature function and stores the key without printing it, the audit
// passes, and an audit with another key reports that the stored key is not
// the proxy's.
func TestPGMigrateHardened(t *testing.T) {
	owner, ownerURL, roleURL := newAuditDB(t)
	ctx := context.Background()
	if _, err := owner.Exec(ctx, "DROP TABLE leaky"); err != nil {
		t.Fatal(err)
	}
	const key = "hardened-mode-key-0123456789abcdefghij"
	config := func(key string) string {
		return writeConfig(t, fmt.Sprintf("jwt: {secret: %s}\ntenants: [{id: acme}]\npostgres: {listen: %q, upstream: %q, tenant_signature: {key: %q}}\n",
			testSecret, freeAddr(t), roleURL, key))
	}
	path := config(key)
	code, out, errOut := runCLI("pg", "migrate", "--config", path, "--table", "notes", "--url", ownerURL, "--tenant", "acme", "--apply")
	if code != 0 || !strings.Contains(out, "tenantgate_rls.current_tenant()") {
		t.Fatalf("migrate --apply: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, key) || strings.Contains(out, "\\x") {
		t.Fatalf("migrate printed key material:\n%s", out)
	}
	code, out, errOut = runCLI("pg", "audit", "--config", path)
	if code != 0 {
		t.Fatalf("audit after a hardened migrate: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, _ = runCLI("pg", "audit", "--config", config("another-key-just-as-long-0123456789abc"))
	if code != 1 || !strings.Contains(out, "does not accept the proxy's signatures") {
		t.Fatalf("audit with another key: exit %d\n%s", code, out)
	}
}
