package redis

import (
	"fmt"
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

	for _, tc := range []struct {
		name       string
		tracking   []string // CLIENT TRACKING ON options
		read       string   // a key the tracking client reads first ("" = none)
		quiet      []string // keys written by B, then by A, that must not invalidate
		invalidate string   // the key A then writes, which must
	}{
		{"default mode", nil, "k", []string{"k"}, "k"},
		{"broadcast", []string{"BCAST", "PREFIX", "user:"}, "", []string{"user:1", "order:1"}, "user:1"},
		{"broadcast without a prefix is the tenant's keyspace", []string{"BCAST"}, "", []string{"anything"}, "anything"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := trackingClient(t, p, a, tc.tracking...)
			if tc.read != "" {
				if got := c.do("GET", tc.read); !strings.HasPrefix(got, "$") {
					t.Fatalf("GET %s = %q", tc.read, got)
				}
			}
			for _, k := range tc.quiet {
				must[string](t)(writerB.Set(t.Context(), k, "b", 0).Result())
			}
			for _, k := range tc.quiet[1:] {
				must[string](t)(writerA.Set(t.Context(), k, "a", 0).Result())
			}
			expectNoPush(t, c, "writes of B, and of A outside the tracked keys")
			must[string](t)(writerA.Set(t.Context(), tc.invalidate, "a", 0).Result())
			want := fmt.Sprintf(">2\r\n$10\r\ninvalidate\r\n*1\r\n$%d\r\n%s\r\n", len(tc.invalidate), tc.invalidate)
			if got := c.read(); got != want {
				t.Fatalf("invalidation = %q, want %q", got, want)
			}
		})
	}

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
