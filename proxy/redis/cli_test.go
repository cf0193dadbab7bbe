package redis

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRedisCLI drives the proxy with the real redis-cli (RESP2, -a token,
// then a RESP3 session with -3).
func TestRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-cli is not installed")
		}
		t.Skip("redis-cli is not installed")
	}
	ids := tenants(2)
	p := startProxy(t, ids...)
	host, port, _ := strings.Cut(p.addr, ":")
	run := func(tenant string, extra []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(cli, append(append([]string{"-h", host, "-p", port, "--no-auth-warning", "-a", p.token(tenant)}, extra...), args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run(ids[0], nil, "SET", "greeting", "hello"); got != "OK" {
		t.Errorf("SET = %q", got)
	}
	if got := run(ids[1], nil, "SET", "greeting", "hi"); got != "OK" {
		t.Errorf("SET = %q", got)
	}
	if got := run(ids[0], nil, "GET", "greeting"); got != "hello" {
		t.Errorf("GET = %q", got)
	}
	if got := run(ids[1], []string{"-3"}, "GET", "greeting"); got != "hi" {
		t.Errorf("GET with -3 = %q", got)
	}
	if got := run(ids[0], nil, "--scan"); got != "greeting" {
		t.Errorf("--scan = %q", got)
	}
	if got := run(ids[0], nil, "CONFIG", "GET", "*"); !strings.Contains(got, "CONFIG acts on the whole server") {
		t.Errorf("CONFIG GET = %q", got)
	}
	if got := run(ids[0], nil, "DBSIZE"); got != "1" {
		t.Errorf("DBSIZE = %q", got)
	}
}
