package pg

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

var testSigningKey = []byte("0123456789abcdef0123456789abcdef-hardened")

func newTestSigner(t *testing.T, key []byte) *TenantSigner {
	t.Helper()
	s, err := NewTenantSigner(key, "app.tenant_sig")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newHardenedEnv is a proxy in hardened mode in front of a table that
// `pg migrate` made tenant-scoped with the signer, holding one row per
// tenant with the same id.
func newHardenedEnv(t *testing.T) (*pgEnv, *TenantSigner) {
	t.Helper()
	signer := newTestSigner(t, testSigningKey)
	env := newPGEnv(t, func(o *Options) { o.Signer = signer })
	ctx := context.Background()
	admin := env.admin()
	mustExec(t, admin, "CREATE TABLE notes (id int PRIMARY KEY, body text)")
	mustExec(t, admin, "GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO "+proxyRole(t, env))
	plan, err := PlanMigration(ctx, admin, MigrateOptions{Table: "notes", Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyMigration(ctx, admin, plan, signer); err != nil {
		t.Fatal(err)
	}
	mustExec(t, env.client(tenantA), "INSERT INTO notes (id, body) VALUES (1, 'a-note')")
	mustExec(t, env.client(tenantB), "INSERT INTO notes (id, body) VALUES (1, 'b-note')")
	return env, signer
}

func notes(t *testing.T, c *pgx.Conn) []string {
	t.Helper()
	return queryStrings(t, c, "SELECT body FROM notes ORDER BY id")
}

// Through the proxy, hardened mode is invisible: each tenant reads and
// writes its own rows.
func TestHardenedModeThroughProxy(t *testing.T) {
	env, _ := newHardenedEnv(t)
	a, b := env.client(tenantA), env.client(tenantB)
	if got := notes(t, a); !slices.Equal(got, []string{"a-note"}) {
		t.Fatalf("A sees %v", got)
	}
	if got := notes(t, b); !slices.Equal(got, []string{"b-note"}) {
		t.Fatalf("B sees %v", got)
	}
	mustExec(t, a, "UPDATE notes SET body = 'a-edited'")
	if got := notes(t, b); !slices.Equal(got, []string{"b-note"}) {
		t.Fatalf("after A's update B sees %v", got)
	}
	// Resets drop the settings; the proxy applies both again.
	for _, reset := range []string{"RESET ALL", "RESET app.tenant_sig", "RESET app.tenant_id"} {
		mustExec(t, a, reset, pgx.QueryExecModeSimpleProtocol)
		if got := notes(t, a); !slices.Equal(got, []string{"a-edited"}) {
			t.Fatalf("after %s A sees %v", reset, got)
		}
	}
	_, err := a.Exec(context.Background(), "SET app.tenant_sig = 'x'")
	assertRefused(t, err, RuleTenantSetting)
}

// A statement that got past the guard and wrote the tenant setting — here
// run directly on the server as the proxy's role, which is what such a
// statement would run as — reaches nothing: without the signature of the
// forged tenant the policy matches no row, and the key is out of reach.
// The last step, with the right signature, shows the check can pass.
func TestHardenedModeForgedTenantSeesNothing(t *testing.T) {
	env, signer := newHardenedEnv(t)
	ctx := context.Background()
	role := connect(t, env.engine.opts.Upstream)
	mustExec(t, role, "SELECT set_config('app.tenant_id', $1, false), set_config('app.tenant_sig', $2, false)", tenantA, signer.Sign(tenantA))
	if got := notes(t, role); !slices.Equal(got, []string{"a-note"}) {
		t.Fatalf("with A's signed tenant the role sees %v", got)
	}

	for _, forged := range []struct{ name, signature string }{
		{"no signature", ""},
		{"A's signature", signer.Sign(tenantA)},
		{"another key's signature", newTestSigner(t, []byte("another key, just as long as the real one")).Sign(tenantB)},
		{"upper-case hex", strings.ToUpper(signer.Sign(tenantB))},
	} {
		mustExec(t, role, "SELECT set_config('app.tenant_id', $1, false), set_config('app.tenant_sig', $2, false)", tenantB, forged.signature)
		if got := notes(t, role); len(got) != 0 {
			t.Fatalf("tenant B forged with %s: the role sees %v", forged.name, got)
		}
		if _, err := role.Exec(ctx, "INSERT INTO notes (tenant_id, id, body) VALUES ($1, 2, 'forged')", tenantB); err == nil {
			t.Fatalf("tenant B forged with %s: insert succeeded", forged.name)
		}
		if tag, err := role.Exec(ctx, "UPDATE notes SET body = 'forged'"); err != nil || tag.RowsAffected() != 0 {
			t.Fatalf("tenant B forged with %s: update touched %d rows (%v)", forged.name, tag.RowsAffected(), err)
		}
	}
	if _, err := role.Exec(ctx, "SELECT * FROM tenantgate_rls.signing_key"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("the role read the signing key: %v", err)
	}

	if all := queryStrings(t, env.admin(), "SELECT tenant_id || ':' || body FROM notes ORDER BY 1"); !slices.Equal(all, []string{"acme:a-note", "globex:b-note"}) {
		t.Fatalf("rows changed: %v", all)
	}

	mustExec(t, role, "SELECT set_config('app.tenant_id', $1, false), set_config('app.tenant_sig', $2, false)", tenantB, signer.Sign(tenantB))
	if got := notes(t, role); !slices.Equal(got, []string{"b-note"}) {
		t.Fatalf("with B's real signature the role sees %v", got)
	}
}

// The audit in hardened mode: the migrated table passes, a table whose
// policy trusts the bare setting does not, and neither does a key that is
// not the proxy's.
func TestHardenedModePosture(t *testing.T) {
	env, signer := newHardenedEnv(t)
	ctx := context.Background()
	role := connect(t, env.engine.opts.Upstream)
	// With the function's schema on the role's search path, pg_get_expr
	// would print it unqualified; the audit must still recognise it.
	mustExec(t, role, "SET search_path = tenantgate_rls, public")
	posture, err := CheckPosture(ctx, role, PostureOptions{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	var critical []string
	for _, f := range posture.Findings {
		if f.Severity == Critical {
			critical = append(critical, f.Object+": "+f.Message)
		}
	}
	// items (the shared test schema) still trusts current_setting; notes
	// and the function pass.
	if !slices.Contains(critical, "public.items: no policy FOR ALL whose USING and WITH CHECK test "+tested(PostureOptions{Signer: signer})) ||
		slices.ContainsFunc(critical, func(f string) bool { return !strings.HasPrefix(f, "public.items: ") }) {
		t.Fatalf("critical findings: %q", critical)
	}

	wrongKey := newTestSigner(t, []byte("another key, just as long as the real one"))
	posture, err = CheckPosture(ctx, role, PostureOptions{Signer: wrongKey})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(posture.Findings, func(f Finding) bool {
		return f.Severity == Critical && strings.Contains(f.Message, "does not accept the proxy's signatures")
	}) {
		t.Fatalf("a wrong key was not reported: %v", posture.Findings)
	}
}

func TestTenantSignerRejectsShortKeys(t *testing.T) {
	if _, err := NewTenantSigner([]byte("too short"), "app.tenant_sig"); err == nil {
		t.Fatal("a 9-byte key was accepted")
	}
}
