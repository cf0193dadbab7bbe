package redis

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/proxy"
)

// TestUpstreamFailureEndsTheSession: when the session's upstream connection
// dies, the client's connection is closed rather than left desynchronised,
// and a new connection works.
func TestUpstreamFailureEndsTheSession(t *testing.T) {
	ids := tenants(1)
	p := startProxy(t, ids...)
	c := dialRaw(t, p)
	c.do("AUTH", p.token(ids[0]))
	reply := c.do("CLIENT", "ID")
	id, err := strconv.ParseInt(strings.TrimSpace(reply[1:]), 10, 64)
	if err != nil {
		t.Fatalf("CLIENT ID = %q", reply)
	}
	if err := p.upstream.ClientKillByFilter(context.Background(), "ID", strconv.FormatInt(id, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.ReadByte(); err == nil {
		t.Fatal("the session survived the loss of its upstream connection")
	}
	again := dialRaw(t, p)
	again.do("AUTH", p.token(ids[0]))
	if got := again.do("PING"); got != "+PONG\r\n" {
		t.Errorf("a new session after the upstream failure: %q", got)
	}
}

// TestDrainLetsTheRequestInFlightFinish: on shutdown an idle session ends at
// once, and a blocked command still gets its reply first.
func TestDrainLetsTheRequestInFlightFinish(t *testing.T) {
	ids := tenants(1)
	// With an idle timeout, the listener re-arms the read deadline at every read.
	p := startProxyWith(t, proxy.ListenerConfig{IdleTimeout: time.Minute}, ids...)
	idle, busy := dialRaw(t, p), dialRaw(t, p)
	idle.do("AUTH", p.token(ids[0]))
	busy.do("AUTH", p.token(ids[0]))
	if _, err := busy.conn.Write([]byte("*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$3\r\n0.5\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.listener.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("drain took %s", elapsed)
	}
	if got := busy.read(); got != "*-1\r\n" && got != "_\r\n" {
		t.Errorf("the blocked BLPOP's reply = %q", got)
	}
	_ = idle.conn.SetReadDeadline(time.Now().Add(time.Second))
	var ne net.Error
	if _, err := idle.r.ReadByte(); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("the idle session was not closed: %v", err)
	}
}

func TestRequestsAreCounted(t *testing.T) {
	ids := tenants(1)
	p := startProxy(t, ids...)
	c := dialRaw(t, p)
	c.do("AUTH", p.token(ids[0]))
	c.do("SET", "k", "v")
	c.do("PING")
	c.do("EVAL", "return 1", "0")
	for outcome, want := range map[string]float64{"rewritten": 1, "forwarded": 1, "refused": 1} {
		got := gatherCounter(t, p, "tenantgate_requests_total", outcome)
		if got != want {
			t.Errorf("requests_total{outcome=%q} = %v, want %v", outcome, got, want)
		}
	}
}

func gatherCounter(t *testing.T, p *testProxy, name, outcome string) float64 {
	t.Helper()
	return p.metric(name, "outcome", outcome)
}

// closedWithin reports whether the proxy closes c within d.
func closedWithin(c *rawConn, d time.Duration) bool {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	_, err := c.r.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestResetDropsIdentity: after RESET the session has no tenant (its
// refusals are audited without one) and must authenticate again within the
// handshake timeout, as a new connection must.
func TestResetDropsIdentity(t *testing.T) {
	ids := tenants(1)
	p := startProxyWith(t, proxy.ListenerConfig{HandshakeTimeout: time.Second}, ids...)
	c := dialRaw(t, p)
	if got := c.do("AUTH", p.token(ids[0])); got != "+OK\r\n" {
		t.Fatalf("AUTH = %q", got)
	}
	time.Sleep(1200 * time.Millisecond) // past the handshake timeout: authenticated, no deadline
	if got := c.do("RESET"); got != "+RESET\r\n" {
		t.Fatalf("RESET = %q", got)
	}
	if got := c.do("GET", "k"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Fatalf("GET after RESET = %q", got)
	}
	for line := range strings.Lines(p.auditLog()) {
		if strings.Contains(line, `"reason":"not_authenticated"`) && strings.Contains(line, ids[0]) {
			t.Errorf("the refusal after RESET is audited as the old tenant's: %s", line)
		}
	}
	// RESETs while unauthenticated do not push the deadline back.
	time.Sleep(400 * time.Millisecond)
	if got := c.do("RESET"); got != "+RESET\r\n" {
		t.Fatalf("second RESET = %q", got)
	}
	if !closedWithin(c, 900*time.Millisecond) {
		t.Error("the reset session was not closed at the handshake timeout")
	}
}

// TestIdleTimeoutSparesSubscribers: like Redis's own timeout, the idle
// timeout does not close a quiet subscriber, which still gets its messages,
// but it does close it once it has unsubscribed from everything.
func TestIdleTimeoutSparesSubscribers(t *testing.T) {
	ids := tenants(1)
	p := startProxyWith(t, proxy.ListenerConfig{IdleTimeout: 300 * time.Millisecond}, ids...)
	sub, idle := dialRaw(t, p), dialRaw(t, p)
	for _, c := range []*rawConn{sub, idle} {
		if got := c.do("AUTH", p.token(ids[0])); got != "+OK\r\n" {
			t.Fatalf("AUTH = %q", got)
		}
	}
	if got := sub.do("SUBSCRIBE", "news"); !strings.HasPrefix(got, "*3\r\n$9\r\nsubscribe\r\n") {
		t.Fatalf("SUBSCRIBE = %q", got)
	}
	if !closedWithin(idle, 2*time.Second) {
		t.Fatal("the idle timeout does not apply in this test")
	}
	time.Sleep(400 * time.Millisecond) // the subscriber is past the idle timeout too
	if n := p.client(ids[0]).Publish(context.Background(), "news", "hi").Val(); n != 1 {
		t.Fatalf("PUBLISH reached %d subscribers, want 1", n)
	}
	if got := sub.read(); got != "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n" {
		t.Fatalf("the quiet subscriber got %q", got)
	}
	if got := sub.do("UNSUBSCRIBE"); !strings.HasPrefix(got, "*3\r\n$11\r\nunsubscribe\r\n") {
		t.Fatalf("UNSUBSCRIBE = %q", got)
	}
	if !closedWithin(sub, 2*time.Second) {
		t.Error("a session without subscriptions is spared the idle timeout")
	}
}
