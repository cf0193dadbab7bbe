package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/policy"
)

const testSecret = "cmd-test-secret-0123456789abcdef0123"

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tenantgate.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestTokenMintsAVerifiableToken(t *testing.T) {
	t.Setenv("TENANTGATE_JWT_SECRET", testSecret)
	code, out, errOut := runCLI("token", "--tenant", "acme", "--ttl", "10m")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	tok := strings.TrimSpace(out)
	if strings.Count(out, "\n") != 1 || strings.Count(tok, ".") != 2 {
		t.Fatalf("stdout should be the token alone on one line, got %q", out)
	}
	v, err := policy.NewVerifier(t.Context(), policy.VerifierConfig{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	id, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	if id.Tenant != "acme" || time.Until(id.ExpiresAt) > 10*time.Minute || time.Until(id.ExpiresAt) < 9*time.Minute {
		t.Errorf("identity = %+v, want acme expiring in 10m", id)
	}
}

func TestTokenUsesConfig(t *testing.T) {
	t.Setenv("TENANTGATE_JWT_SECRET", "")
	path := writeConfig(t, "jwt: {secret: "+testSecret+", tenant_claim: org}\n")
	code, out, errOut := runCLI("token", "--tenant", "globex", "--config", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	v, err := policy.NewVerifier(t.Context(), policy.VerifierConfig{Secret: []byte(testSecret), TenantClaim: "org"})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if id, err := v.Verify(strings.TrimSpace(out)); err != nil || id.Tenant != "globex" {
		t.Errorf("Verify = %+v, %v; want tenant globex in claim org", id, err)
	}
}

func TestTokenErrors(t *testing.T) {
	t.Setenv("TENANTGATE_JWT_SECRET", "")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"token"}, "--tenant is required"},
		{[]string{"token", "--tenant", "acme"}, "no HS256 secret"},
		{[]string{"token", "--tenant", "a:b"}, ""},
	} {
		code, out, errOut := runCLI(tt.args...)
		if code == 0 || out != "" {
			t.Errorf("%v: exit %d, stdout %q; want failure and no token", tt.args, code, out)
		}
		if !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: stderr %q, want %q", tt.args, errOut, tt.want)
		}
	}
	t.Setenv("TENANTGATE_JWT_SECRET", testSecret)
	if code, out, _ := runCLI("token", "--tenant", "a:b"); code == 0 || out != "" {
		t.Errorf("a token was minted for an invalid tenant id: %q", out)
	}
}

func TestCheckConfig(t *testing.T) {
	t.Setenv("TG_TEST_SECRET", testSecret)
	path := writeConfig(t, "jwt: {secret: '${TG_TEST_SECRET}'}\nregistry: {postgres: 'postgres://reg:pa55word@127.0.0.1/t'}\n")
	code, out, errOut := runCLI("check-config", "--config", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, testSecret) || strings.Contains(out, "pa55word") {
		t.Errorf("check-config printed a secret:\n%s", out)
	}
	if !strings.Contains(out, "listen: 127.0.0.1:9090") || !strings.Contains(out, "tenant_claim: tenant_id") {
		t.Errorf("check-config did not print the resolved defaults:\n%s", out)
	}

	bad := writeConfig(t, "jwt:\n  leway: 30s\n")
	code, out, errOut = runCLI("check-config", "--config", bad)
	if code == 0 || out != "" || !strings.Contains(errOut, "jwt.leway (line 2): unknown key") {
		t.Errorf("bad config: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, errOut := runCLI("serve"); code != 2 || !strings.Contains(errOut, `unknown command "serve"`) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// buildBinary builds tenantgate once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tenantgate")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestRunServesAdminAndDrainsOnSIGTERM(t *testing.T) {
	bin := buildBinary(t)
	admin := freeAddr(t)
	path := writeConfig(t, fmt.Sprintf("admin: {listen: %q}\nserver: {drain_timeout: 2s}\n", admin))
	cmd := exec.Command(bin, "run", "--config", path)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	waitReady(t, "http://"+admin+"/readyz")

	body := get(t, "http://"+admin+"/metrics", 200)
	for _, family := range []string{
		"tenantgate_connections_active", "tenantgate_connections_total", "tenantgate_requests_total",
		"tenantgate_refusals_total", "tenantgate_auth_failures_total", "tenantgate_request_duration_seconds",
		"tenantgate_upstream_connections",
	} {
		if !strings.Contains(body, "# TYPE "+family+" ") {
			t.Errorf("/metrics lacks %s", family)
		}
	}
	if got := get(t, "http://"+admin+"/healthz", 200); strings.TrimSpace(got) != "ok" {
		t.Errorf("/healthz = %q", got)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still running 5s after SIGTERM with a 2s drain deadline")
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("shutdown took %s, over the drain deadline", elapsed)
	}
	var all []string
	for line := range logs {
		all = append(all, line)
	}
	joined := strings.Join(all, "\n")
	if !strings.Contains(joined, `"msg":"shutting down: draining sessions"`) || !strings.HasPrefix(strings.TrimSpace(joined), "{") {
		t.Errorf("expected JSON logs with the drain message, got:\n%s", joined)
	}
}

func TestRunRefusesBusyAddressAndMissingEngines(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	path := writeConfig(t, fmt.Sprintf("admin: {listen: %q}\n", busy.Addr()))
	code, _, errOut := runCLI("run", "--config", path)
	if code == 0 || !strings.Contains(errOut, "admin.listen") || !strings.Contains(errOut, "address already in use") {
		t.Errorf("busy admin address: exit %d, stderr %q", code, errOut)
	}

	// Database mode is built, but only with database names Neo4j accepts.
	path = writeConfig(t, fmt.Sprintf("jwt: {secret: %s}\ntenants: [{id: acme}]\nadmin: {listen: %q}\nbolt: {listen: %q, upstream: 'bolt://127.0.0.1:1', mode: database, database_template: 'Tenant_{tenant}'}\n",
		testSecret, freeAddr(t), freeAddr(t)))
	code, _, errOut = runCLI("run", "--config", path)
	if code == 0 || !strings.Contains(errOut, "bolt.database_template") || !strings.Contains(errOut, "Neo4j database names") {
		t.Errorf("bolt database mode with an invalid database template: exit %d, stderr %q", code, errOut)
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}

func get(t *testing.T, url string, wantStatus int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s = %d, want %d: %s", url, resp.StatusCode, wantStatus, body)
	}
	return string(body)
}
