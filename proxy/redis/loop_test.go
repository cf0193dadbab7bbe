//go:build linux

package redis

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/proxytest"
)

// loopRan reports whether the event loop's upstream connection of
// protocol proto ran command name last.
func (p *testProxy) loopRan(proto int, name string) bool {
	p.t.Helper()
	for _, l := range p.engine.loops {
		if id := l.upstreamID(proto); id != 0 && p.upstreamClient(id)["cmd"] == name {
			return true
		}
	}
	return false
}

// TestEventLoopServesSharedCommands: once authenticated, a session's
// commands run on the event loop's upstream connection.
func TestEventLoopServesSharedCommands(t *testing.T) {
	ids := tenants(1)
	p := startProxy(t, ids...)
	if len(p.engine.loops) == 0 {
		t.Fatal("the engine runs no event loop")
	}
	c := p.session(t, ids[0])
	c.do("SET", "k", "v")
	if got := c.do("GET", "k"); got != "$1\r\nv\r\n" {
		t.Fatalf("GET = %q", got)
	}
	if !p.loopRan(2, "get") {
		t.Error("GET did not run on the event loop's connection")
	}
}

// TestEventLoopHandsBackMidPipeline: one write carries commands the loop
// runs and commands the session's goroutine must (a tenant switch, a
// transaction, the connection name): every reply comes in order, and
// each command ran for the tenant the session had at that point.
func TestEventLoopHandsBackMidPipeline(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	c := p.session(t, ids[0])
	c.do("PING") // the session is in the loop from here
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"SET", "k", "first"}, "+OK\r\n"},
		{[]string{"GET", "k"}, "$5\r\nfirst\r\n"},
		{[]string{"AUTH", p.token(ids[1])}, "+OK\r\n"},
		{[]string{"GET", "k"}, "$-1\r\n"},
		{[]string{"SET", "k", "second"}, "+OK\r\n"},
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"INCR", "n"}, "+QUEUED\r\n"},
		{[]string{"EXEC"}, "*1\r\n:1\r\n"},
		{[]string{"CLIENT", "SETNAME", "worker"}, "+OK\r\n"},
		{[]string{"CLIENT", "GETNAME"}, "$6\r\nworker\r\n"},
		{[]string{"EVAL", "return 1", "0"}, "-ERR"},
		{[]string{"GET", "k"}, "$6\r\nsecond\r\n"},
		{[]string{"RESET"}, "+RESET\r\n"},
		{[]string{"GET", "k"}, "-NOAUTH"},
		{[]string{"AUTH", p.token(ids[0])}, "+OK\r\n"},
		{[]string{"GET", "k"}, "$5\r\nfirst\r\n"},
	}
	var batch []byte
	for _, s := range steps {
		batch = appendRESP(batch, s.args...)
	}
	if _, err := c.conn.Write(batch); err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if got := c.read(); !strings.HasPrefix(got, s.want) {
			t.Errorf("%s = %q, want %q", s.args[0], got, s.want)
		}
	}
	for i, want := range []string{"first", "second"} {
		if got := p.upstream.Get(context.Background(), "t:"+ids[i]+":k").Val(); got != want {
			t.Errorf("tenant %s's k on the upstream = %q, want %q", ids[i], got, want)
		}
	}
	if got := p.upstream.Get(context.Background(), "t:"+ids[0]+":n").Val(); got != "" {
		t.Errorf("the transaction ran for the first tenant: its n = %q", got)
	}
}

// TestEventLoopClientLeavesWithCommandsInFlight: a client that pipelines
// and hangs up at once has all of its commands run, and its session ends.
func TestEventLoopClientLeavesWithCommandsInFlight(t *testing.T) {
	ids := tenants(1)
	p := startProxy(t, ids...)
	c := p.session(t, ids[0])
	c.do("PING")
	var batch []byte
	for range 1000 {
		batch = appendRESP(batch, "INCR", "n")
	}
	if _, err := c.conn.Write(batch); err != nil {
		t.Fatal(err)
	}
	_ = c.conn.Close()
	witness := p.session(t, ids[0])
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := witness.do("GET", "n")
		if got == "$4\r\n1000\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET n = %q, want the 1000 increments", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for time.Now().Before(deadline) && p.metric("tenantgate_connections_active") != 1 {
		time.Sleep(20 * time.Millisecond)
	}
	if n := p.metric("tenantgate_connections_active"); n != 1 {
		t.Errorf("%v sessions open, want the witness's alone", n)
	}
}

// TestEventLoopSessionEndsAtTokenExpiry: a session idle in the event loop
// is closed when its token expires; another tenant's session goes on.
func TestEventLoopSessionEndsAtTokenExpiry(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	short := dialRaw(t, p)
	if got := short.do("AUTH", proxytest.TokenFor(t, ids[0], 1500*time.Millisecond)); got != "+OK\r\n" {
		t.Fatalf("AUTH = %q", got)
	}
	short.do("SET", "k", "v")
	other := p.session(t, ids[1])
	other.do("SET", "k", "w")
	if !closedWithin(short, 4*time.Second) {
		t.Fatal("the session outlived its token")
	}
	for i := range 3 {
		if got := other.do("INCR", "c"); got != ":"+strconv.Itoa(i+1)+"\r\n" {
			t.Fatalf("the other session's INCR = %q", got)
		}
	}
	if got := p.upstream.Get(context.Background(), "t:"+ids[0]+":k").Val(); got != "v" {
		t.Errorf("the expired session's key = %q", got)
	}
}
