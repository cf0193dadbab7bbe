package proxy

import (
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/testutil"
)

func TestDeferredExpiryAwaitsReauthentication(t *testing.T) {
	e := newTestEnv(t, acme, globex)
	l := e.listen(ListenerConfig{Protocol: "mongo"})
	c := dial(t, l)
	if got := c.do("AUTH " + e.token("acme", 1100*time.Millisecond)); got != "OK" {
		t.Fatalf("AUTH = %q", got)
	}
	c.do("DEFER")
	testutil.WaitFor(t, "the session to be marked expired", func() bool { return c.do("PING") == "ERR reauthenticate" })
	if got := c.do("AUTH " + e.token("globex", time.Hour)); got != "OK" {
		t.Fatalf("re-AUTH = %q", got)
	}
	if got := c.do("PING"); got != "globex:PING" {
		t.Errorf("after re-authentication: %q", got)
	}

	late := dial(t, l)
	late.do("AUTH " + e.token("acme", 1100*time.Millisecond))
	late.do("DEFER")
	if !late.closedByServer(5 * time.Second) {
		t.Error("a session that never re-authenticated outlived the grace period")
	}
}

func TestDeauthenticateLeavesTheTenant(t *testing.T) {
	e := newTestEnv(t, acme)
	l := e.listen(ListenerConfig{HandshakeTimeout: 300 * time.Millisecond})
	c := dial(t, l)
	c.do("AUTH " + e.token("acme", time.Hour))
	testutil.WaitFor(t, "acme listed", func() bool { return len(e.sessions.Tenants()) == 1 })
	if got := c.do("RESET"); got != "OK" {
		t.Fatalf("RESET = %q", got)
	}
	if got := c.do("PING"); got != "ERR not_authenticated" {
		t.Errorf("after Deauthenticate the session is still served: %q", got)
	}
	if n := len(e.sessions.Tenants()); n != 0 {
		t.Errorf("a deauthenticated session is still listed under its tenant (%d tenants)", n)
	}
	if !c.closedByServer(3 * time.Second) {
		t.Error("a deauthenticated session got no new handshake deadline")
	}
}

func TestIdleExemptSessionOutlivesIdleTimeout(t *testing.T) {
	e := newTestEnv(t, acme)
	l := e.listen(ListenerConfig{IdleTimeout: 200 * time.Millisecond})
	c := dial(t, l)
	c.do("AUTH " + e.token("acme", time.Hour))
	c.do("EXEMPT")
	if c.closedByServer(600 * time.Millisecond) {
		t.Fatal("an idle-exempt session was closed by the idle timeout")
	}
	if got := c.do("PING"); got != "acme:PING" {
		t.Errorf("exempt session: %q", got)
	}
}

func TestEngineReadDeadlineWinsOverIdleTimeout(t *testing.T) {
	e := newTestEnv(t, acme)
	l := e.listen(ListenerConfig{IdleTimeout: 10 * time.Second})
	c := dial(t, l)
	c.do("AUTH " + e.token("acme", time.Hour))
	c.do("STOPREADING")
	if !c.closedByServer(3 * time.Second) {
		t.Fatal("the idle timeout overrode the engine's own read deadline")
	}
}
