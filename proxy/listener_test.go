package proxy

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/policy"
)

var (
	acme   = policy.Tenant{ID: "acme", Slug: "acme", Active: true}
	globex = policy.Tenant{ID: "globex", Slug: "globex", Active: true}
	frozen = policy.Tenant{ID: "frozen", Slug: "frozen", Active: false}
)

func TestAuthenticatedSessionIsScopedToItsTenant(t *testing.T) {
	e := newTestEnv(t, acme, globex)
	l := e.listen(ListenerConfig{})
	a, g := dial(t, l), dial(t, l)
	if got := a.do("AUTH " + e.token("acme", time.Hour)); got != "OK" {
		t.Fatalf("acme AUTH = %q", got)
	}
	if got := g.do("AUTH " + e.token("globex", time.Hour)); got != "OK" {
		t.Fatalf("globex AUTH = %q", got)
	}
	if got := a.do("GET k"); got != "acme:GET k" {
		t.Errorf("acme got %q", got)
	}
	if got := g.do("GET k"); got != "globex:GET k" {
		t.Errorf("globex got %q", got)
	}
	testutil.WaitFor(t, "both tenants in the session table", func() bool { return len(e.sessions.Tenants()) == 2 })
	if got := promtest.ToFloat64(e.metrics.connectionsTotal.WithLabelValues("redis", ConnAccepted)); got != 2 {
		t.Errorf("connections_total{accepted} = %v, want 2", got)
	}
	if got := promtest.ToFloat64(e.metrics.requestsTotal.WithLabelValues("redis", OutcomeForwarded)); got != 2 {
		t.Errorf("requests_total{forwarded} = %v, want 2", got)
	}
}

func TestRefusedCredentialsAreCountedAndAudited(t *testing.T) {
	e := newTestEnv(t, acme, frozen)
	l := e.listen(ListenerConfig{})
	c := dial(t, l)
	tests := []struct{ token, want string }{
		{"not-a-jwt", "ERR malformed"},
		{e.token("nobody", time.Hour), "ERR unknown_tenant"},
		{e.token("frozen", time.Hour), "ERR suspended_tenant"},
	}
	for _, tt := range tests {
		if got := c.do("AUTH " + tt.token); got != tt.want {
			t.Errorf("AUTH = %q, want %q", got, tt.want)
		}
	}
	if got := c.do("GET k"); got != "ERR not_authenticated" {
		t.Errorf("unauthenticated GET = %q", got)
	}
	for _, reason := range []string{"malformed", "unknown_tenant", "suspended_tenant"} {
		if got := promtest.ToFloat64(e.metrics.authFailuresTotal.WithLabelValues("redis", reason)); got != 1 {
			t.Errorf("auth_failures_total{%s} = %v, want 1", reason, got)
		}
		if !strings.Contains(e.auditLog(), `"kind":"auth_failure","protocol":"redis"`) || !strings.Contains(e.auditLog(), `"reason":"`+reason+`"`) {
			t.Errorf("audit log lacks the %s auth failure:\n%s", reason, e.auditLog())
		}
	}
	if strings.Contains(e.auditLog(), "GET k") {
		t.Error("audit log holds statement text although audit.statements is off")
	}
	if !strings.Contains(e.auditLog(), StatementDigest([]byte("GET k"))) {
		t.Error("audit log lacks the refused statement's digest")
	}
	_ = c.conn.Close()
	testutil.WaitFor(t, "connection result auth_failed", func() bool {
		return promtest.ToFloat64(e.metrics.connectionsTotal.WithLabelValues("redis", ConnAuthFailed)) == 1
	})
}

func TestReauthenticationSwitchesTenant(t *testing.T) {
	e := newTestEnv(t, acme, globex)
	l := e.listen(ListenerConfig{})
	c := dial(t, l)
	c.do("AUTH " + e.token("acme", time.Hour))
	if got := c.do("AUTH " + e.token("globex", time.Hour)); got != "OK" {
		t.Fatalf("re-AUTH = %q", got)
	}
	if got := c.do("GET k"); got != "globex:GET k" {
		t.Errorf("after re-AUTH got %q, want the new tenant", got)
	}
	testutil.WaitFor(t, "only globex listed", func() bool {
		ts := e.sessions.Tenants()
		return len(ts) == 1 && ts[0] == "globex"
	})
	if got := c.do("AUTH " + e.token("nobody", time.Hour)); got != "ERR unknown_tenant" {
		t.Fatalf("bad re-AUTH = %q", got)
	}
	if got := c.do("GET k"); got != "globex:GET k" {
		t.Errorf("a refused re-AUTH changed the identity: %q", got)
	}
}

func TestHandshakeTimeoutDropsSilentClients(t *testing.T) {
	e := newTestEnv(t, acme)
	l := e.listen(ListenerConfig{HandshakeTimeout: 200 * time.Millisecond})
	c := dial(t, l)
	if !c.closedByServer(3 * time.Second) {
		t.Fatal("a silent client was not dropped at the handshake deadline")
	}
	testutil.WaitFor(t, "handshake_timeout refusal", func() bool {
		return promtest.ToFloat64(e.metrics.refusalsTotal.WithLabelValues("redis", ReasonHandshakeTimeout)) == 1
	})
	// An authenticated client is not subject to the handshake deadline.
	ok := dial(t, l)
	ok.do("AUTH " + e.token("acme", time.Hour))
	time.Sleep(300 * time.Millisecond)
	if got := ok.do("PING"); got != "acme:PING" {
		t.Errorf("authenticated session after the handshake deadline: %q", got)
	}
}

func TestIdleTimeoutEndsIdleSessions(t *testing.T) {
	e := newTestEnv(t, acme)
	l := e.listen(ListenerConfig{IdleTimeout: 200 * time.Millisecond})
	c := dial(t, l)
	c.do("AUTH " + e.token("acme", time.Hour))
	if !c.closedByServer(3 * time.Second) {
		t.Fatal("an idle session outlived the idle timeout")
	}
}

func TestConnectionLimit(t *testing.T) {
	e := newTestEnv(t, acme)
	l := e.listen(ListenerConfig{MaxConnections: 1})
	first := dial(t, l)
	first.do("AUTH " + e.token("acme", time.Hour))
	second := dial(t, l)
	if !second.closedByServer(3 * time.Second) {
		t.Fatal("a connection over the limit was accepted")
	}
	if got := first.do("PING"); got != "acme:PING" {
		t.Errorf("the connection within the limit broke: %q", got)
	}
	testutil.WaitFor(t, "connection_limit refusal", func() bool {
		return promtest.ToFloat64(e.metrics.refusalsTotal.WithLabelValues("redis", ReasonConnectionLimit)) == 1
	})
}

func TestTokenExpiryEndsSession(t *testing.T) {
	e := newTestEnv(t, acme)
	l := e.listen(ListenerConfig{})
	c := dial(t, l)
	if got := c.do("AUTH " + e.token("acme", 1500*time.Millisecond)); got != "OK" {
		t.Fatalf("AUTH = %q", got)
	}
	if !c.closedByServer(5 * time.Second) {
		t.Fatal("the session outlived its token")
	}
	testutil.WaitFor(t, "expiry audited", func() bool {
		return strings.Contains(e.auditLog(), `"kind":"session_closed"`) && strings.Contains(e.auditLog(), `"reason":"expired"`)
	})
}

func TestCloseTenantClosesOnlyThatTenant(t *testing.T) {
	e := newTestEnv(t, acme, globex)
	l := e.listen(ListenerConfig{})
	a1, a2, g := dial(t, l), dial(t, l), dial(t, l)
	a1.do("AUTH " + e.token("acme", time.Hour))
	a2.do("AUTH " + e.token("acme", time.Hour))
	g.do("AUTH " + e.token("globex", time.Hour))
	if n := e.sessions.CloseTenant("acme", ErrTenantSuspended); n != 2 {
		t.Errorf("CloseTenant closed %d sessions, want 2", n)
	}
	if !a1.closedByServer(3*time.Second) || !a2.closedByServer(3*time.Second) {
		t.Error("a suspended tenant's session stayed open")
	}
	if got := g.do("PING"); got != "globex:PING" {
		t.Errorf("another tenant's session was affected: %q", got)
	}
}

func TestShutdownDrainsThenForcesClose(t *testing.T) {
	e := newTestEnv(t, acme)
	l := e.listen(ListenerConfig{})
	c := dial(t, l)
	c.do("AUTH " + e.token("acme", time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := l.Shutdown(ctx)
	if err == nil || !strings.Contains(err.Error(), "closed 1 sessions") {
		t.Errorf("Shutdown = %v, want it to report the forced close", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("Shutdown took %s", elapsed)
	}
	if !c.closedByServer(time.Second) {
		t.Error("session still open after Shutdown")
	}
	if _, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		t.Error("listener still accepts after Shutdown")
	}
}

func TestListenReportsAddressInUse(t *testing.T) {
	e := newTestEnv(t, acme)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = Listen(ListenerConfig{Protocol: "redis", Address: busy.Addr().String(), MaxConnections: 1, HandshakeTimeout: time.Second}, lineEngine{}, e.deps)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Listen on a busy address = %v", err)
	}
}

func TestSessionContextCause(t *testing.T) {
	e := newTestEnv(t, acme)
	l := e.listen(ListenerConfig{})
	c := dial(t, l)
	c.do("AUTH " + e.token("acme", time.Hour))
	var s *Session
	testutil.WaitFor(t, "session listed", func() bool {
		e.sessions.mu.Lock()
		defer e.sessions.mu.Unlock()
		for _, x := range e.sessions.byID {
			s = x
		}
		return s != nil
	})
	e.sessions.CloseTenant("acme", ErrTenantSuspended)
	if cause := context.Cause(s.Context()); !errors.Is(cause, ErrTenantSuspended) {
		t.Errorf("context cause = %v", cause)
	}
}

type panicEngine struct{}

func (panicEngine) Serve(s *Session) error {
	if _, err := s.Authenticate(s.Context(), "x"); err == nil {
		return nil
	}
	panic("engine bug")
}

func TestEnginePanicEndsOnlyThatSession(t *testing.T) {
	e := newTestEnv(t, acme)
	l, err := Listen(ListenerConfig{Protocol: "redis", Address: "127.0.0.1:0", MaxConnections: 10, HandshakeTimeout: time.Second}, panicEngine{}, e.deps)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = l.Serve() }()
	t.Cleanup(func() { _ = l.Shutdown(context.Background()) })
	for range 2 {
		c := dial(t, l)
		if !c.closedByServer(3 * time.Second) {
			t.Fatal("the panicking session was not closed")
		}
	}
}
