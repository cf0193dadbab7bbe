package pg

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// psql, unchanged, works through the proxy: the JWT is its password.
func TestPsql(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("psql is not installed")
		}
		t.Skip("psql is not installed")
	}
	env := newPGEnv(t, nil)
	mustExec(t, env.client(tenantA), "INSERT INTO items (id, name) VALUES (1, 'from-a')")
	mustExec(t, env.client(tenantB), "INSERT INTO items (id, name) VALUES (1, 'from-b')")

	run := func(tenant, script string) (string, error) {
		cmd := exec.Command(psql, "-X", "-At", "-v", "ON_ERROR_STOP=0", "-h", "127.0.0.1", "-p", strings.Split(env.addr, ":")[1],
			"-U", "app", "-d", env.database, "-c", script)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+env.token(tenant), "PGSSLMODE=prefer", "PGCONNECT_TIMEOUT=5")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(tenantA, "SELECT name FROM items")
	if err != nil || strings.TrimSpace(out) != "from-a" {
		t.Fatalf("psql as A: %q, %v", out, err)
	}
	out, _ = run(tenantB, "SET app.tenant_id = 'acme'")
	if !strings.Contains(out, "[tenant_setting]") {
		t.Fatalf("psql refusal: %q", out)
	}
	out, err = run(tenantB, `\copy (SELECT name FROM items) TO STDOUT`)
	if err != nil || strings.TrimSpace(out) != "from-b" {
		t.Fatalf("psql \\copy as B: %q, %v", out, err)
	}
}
