package proxy

import (
	"context"
	"testing"
	"time"
)

func (e *testEnv) listenDefer(cfg ListenerConfig) *Listener {
	e.t.Helper()
	cfg.Protocol, cfg.Address, cfg.MaxConnections = "mongo", "127.0.0.1:0", 10
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 5 * time.Second
	}
	l, err := Listen(cfg, deferEngine{}, e.deps)
	if err != nil {
		e.t.Fatal(err)
	}
	go func() { _ = l.Serve() }()
	e.t.Cleanup(func() { _ = l.Shutdown(context.Background()) })
	return l
}

func TestDeferredExpiryAwaitsReauthentication(t *testing.T) {
	e := newTestEnv(t, acme, globex)
	l := e.listenDefer(ListenerConfig{})
	c := dial(t, l)
	c.do("DEFER")
	if got := c.do("AUTH " + e.token("acme", 1100*time.Millisecond)); got != "OK" {
		t.Fatalf("AUTH = %q", got)
	}
	waitFor(t, "the session to be marked expired", func() bool { return c.do("PING") == "ERR reauthenticate" })
	if got := c.do("AUTH " + e.token("globex", time.Hour)); got != "OK" {
		t.Fatalf("re-AUTH = %q", got)
	}
	if got := c.do("PING"); got != "globex:PING" {
		t.Errorf("after re-authentication: %q", got)
	}

	late := dial(t, l)
	late.do("DEFER")
	late.do("AUTH " + e.token("acme", 1100*time.Millisecond))
	if !late.closedByServer(5 * time.Second) {
		t.Error("a session that never re-authenticated outlived the grace period")
	}
}

func TestDeauthenticateLeavesTheTenant(t *testing.T) {
	e := newTestEnv(t, acme)
	l := e.listenDefer(ListenerConfig{HandshakeTimeout: 300 * time.Millisecond})
	c := dial(t, l)
	c.do("AUTH " + e.token("acme", time.Hour))
	waitFor(t, "acme listed", func() bool { return len(e.sessions.Tenants()) == 1 })
	if got := c.do("RESET"); got != "OK" {
		t.Fatalf("RESET = %q", got)
	}
	if got := c.do("PING"); got != ":PING" {
		t.Errorf("after Deauthenticate the session still has a tenant: %q", got)
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
	l := e.listenDefer(ListenerConfig{IdleTimeout: 200 * time.Millisecond})
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
	l := e.listenDefer(ListenerConfig{IdleTimeout: 10 * time.Second})
	c := dial(t, l)
	c.do("AUTH " + e.token("acme", time.Hour))
	c.do("STOPREADING")
	if !c.closedByServer(3 * time.Second) {
		t.Fatal("the idle timeout overrode the engine's own read deadline")
	}
}
