package redis

import (
	"strings"
	"testing"
)

// trackingClient is a raw RESP3 connection of tenant with client-side
// caching turned on by the tracking command args.
func trackingClient(t *testing.T, p *testProxy, tenant string, args ...string) *rawConn {
	t.Helper()
	c := dialRaw(t, p)
	if got := c.do("HELLO", "3", "AUTH", "app", p.token(tenant)); !strings.HasPrefix(got, "%") {
		t.Fatalf("HELLO 3 = %q", got)
	}
	if got := c.do(append([]string{"CLIENT", "TRACKING", "ON"}, args...)...); got != "+OK\r\n" {
		t.Fatalf("CLIENT TRACKING ON %v = %q", args, got)
	}
	return c
}

// expectNoPush checks that nothing arrives on c for a short while: a PING
// sent after the writes that might have caused a push comes back first.
func expectNoPush(t *testing.T, c *rawConn, why string) {
	t.Helper()
	if got := c.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("%s: got %q before PONG", why, got)
	}
}

// Client-side caching: invalidations of the tenant's own keys arrive with
// the key names as the app wrote them; another tenant writing the same key
// name invalidates nothing, and broadcast mode covers the tenant's keys
// only, whatever prefixes the client asks for.
func TestClientTracking(t *testing.T) {
	ids := tenants(2)
	a, b := ids[0], ids[1]
	p := startProxy(t, ids...)
	writerA, writerB := p.client(a), p.client(b)
	must[string](t)(writerA.Set(t.Context(), "k", "a1", 0).Result())

	t.Run("default mode", func(t *testing.T) {
		c := trackingClient(t, p, a)
		if got := c.do("GET", "k"); got != "$2\r\na1\r\n" {
			t.Fatalf("GET k = %q", got)
		}
		must[string](t)(writerB.Set(t.Context(), "k", "b1", 0).Result())
		expectNoPush(t, c, "B wrote its own k")
		must[string](t)(writerA.Set(t.Context(), "k", "a2", 0).Result())
		if got := c.read(); got != ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n" {
			t.Fatalf("invalidation = %q", got)
		}
	})

	t.Run("broadcast", func(t *testing.T) {
		c := trackingClient(t, p, a, "BCAST", "PREFIX", "user:")
		must[string](t)(writerB.Set(t.Context(), "user:1", "b", 0).Result())
		must[string](t)(writerA.Set(t.Context(), "order:1", "a", 0).Result())
		expectNoPush(t, c, "B's user:1 and A's order:1")
		must[string](t)(writerA.Set(t.Context(), "user:1", "a", 0).Result())
		if got := c.read(); got != ">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\nuser:1\r\n" {
			t.Fatalf("invalidation = %q", got)
		}
	})

	t.Run("broadcast without a prefix is the tenant's keyspace", func(t *testing.T) {
		c := trackingClient(t, p, a, "BCAST")
		must[string](t)(writerB.Set(t.Context(), "anything", "b", 0).Result())
		expectNoPush(t, c, "B wrote a key")
		must[string](t)(writerA.Set(t.Context(), "anything", "a", 0).Result())
		if got := c.read(); got != ">2\r\n$10\r\ninvalidate\r\n*1\r\n$8\r\nanything\r\n" {
			t.Fatalf("invalidation = %q", got)
		}
	})

	t.Run("refused forms", func(t *testing.T) {
		c := dialRaw(t, p)
		c.do("HELLO", "3", "AUTH", "app", p.token(a))
		for _, cmd := range [][]string{
			{"CLIENT", "TRACKING", "ON", "REDIRECT", "1"},
			{"CLIENT", "TRACKINGINFO"},
			{"CLIENT", "TRACKING", "ON", "BOGUS"},
		} {
			if got := c.do(cmd...); !strings.HasPrefix(got, "-") {
				t.Errorf("%v = %q, want an error", cmd, got)
			}
		}
		if got := c.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("the session did not survive: %q", got)
		}
	})
}
