package redis

import (
	"context"
	"slices"
	"testing"

	"github.com/tenantgate/tenantgate/internal/testutil"
)

// TestCommandTableLoadsAlikeFromRESP2AndRESP3: key specs arrive as flat
// arrays in RESP2 and as maps in RESP3; both give the same treatment.
func TestCommandTableLoadsAlikeFromRESP2AndRESP3(t *testing.T) {
	up, err := parseUpstream(testutil.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	treatments := func(proto int) []string {
		u, err := up.dial(context.Background(), proto)
		if err != nil {
			t.Fatal(err)
		}
		defer u.conn.Close()
		reply, err := u.roundTrip("COMMAND")
		if err != nil {
			t.Fatal(err)
		}
		table, err := LoadKeySpecTable(reply)
		if err != nil {
			t.Fatalf("RESP%d: %v", proto, err)
		}
		r := newCommandRewriter(table, DefaultKeyPrefix, 0)
		var out []string
		for _, name := range sortedCommandNames(table) {
			out = append(out, name+" "+r.treatment(name))
		}
		return out
	}
	resp2, resp3 := treatments(2), treatments(3)
	if !slices.Equal(resp2, resp3) {
		t.Errorf("RESP2 and RESP3 tables differ:\n%q\n%q", resp2, resp3)
	}
	if len(resp2) < 200 {
		t.Errorf("only %d commands loaded", len(resp2))
	}
}

// TestCommandTableReloadsWhenTheServerChanges: a new upstream connection
// to a server whose version or modules differ reloads the table.
func TestCommandTableReloadsWhenTheServerChanges(t *testing.T) {
	e, err := New(context.Background(), Options{Upstream: testutil.RedisURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	before := e.rewriter.Load()
	u, err := e.upstream.dial(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer u.conn.Close()
	if err := e.loadCommandTable(u); err != nil || e.rewriter.Load() != before {
		t.Fatalf("same server: reloaded (%v)", err)
	}
	e.mu.Lock()
	e.server = "an older version"
	e.mu.Unlock()
	if err := e.loadCommandTable(u); err != nil || e.rewriter.Load() == before {
		t.Fatalf("changed server: not reloaded (%v)", err)
	}
	if got, err := u.roundTrip("PING"); err != nil || string(got) != "+PONG\r\n" {
		t.Errorf("the connection after the reload: %q, %v", got, err)
	}
}
