package redis

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// rawConn speaks RESP by hand, to see exactly what the proxy answers.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t *testing.T, p *testProxy) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawConn{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// do sends args as one command and returns the reply's raw bytes.
func (c *rawConn) do(args ...string) string {
	c.t.Helper()
	fmt.Fprintf(c.conn, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c.conn, "$%d\r\n%s\r\n", len(a), a)
	}
	return c.read()
}

func (c *rawConn) read() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	rr := replyReader{r: c.r}
	raw, err := rr.next()
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	return string(raw)
}

func TestOnlyHandshakeCommandsBeforeAuth(t *testing.T) {
	ids := tenants(1)
	p := startProxy(t, ids...)
	c := dialRaw(t, p)
	if got := c.do("PING"); got != "+PONG\r\n" {
		t.Errorf("PING before AUTH = %q", got)
	}
	if got := c.do("PING", "hi"); got != "$2\r\nhi\r\n" {
		t.Errorf("PING hi before AUTH = %q", got)
	}
	for _, cmd := range [][]string{{"GET", "k"}, {"KEYS", "*"}, {"NOSUCH"}} {
		if got := c.do(cmd...); !strings.HasPrefix(got, "-NOAUTH") {
			t.Errorf("%v before AUTH = %q", cmd, got)
		}
	}
	if got := c.do("HELLO", "3"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Errorf("HELLO 3 without AUTH = %q", got)
	}
	if got := c.do("AUTH", "not-a-token"); !strings.HasPrefix(got, "-WRONGPASS") {
		t.Errorf("AUTH with garbage = %q", got)
	}
	if got := c.do("AUTH", "default", p.token("unknown-tenant")); !strings.HasPrefix(got, "-WRONGPASS") {
		t.Errorf("AUTH as an unknown tenant = %q", got)
	}
	if got := c.do("AUTH", "default", p.token(ids[0])); got != "+OK\r\n" {
		t.Fatalf("AUTH user token = %q", got)
	}
	if got := c.do("SET", "k", "v"); got != "+OK\r\n" {
		t.Errorf("SET after AUTH = %q", got)
	}
	if got := c.do("QUIT"); got != "+OK\r\n" {
		t.Errorf("QUIT = %q", got)
	}
}

func TestHelloSwitchesProtocolAndAuthenticates(t *testing.T) {
	ids := tenants(1)
	p := startProxy(t, ids...)
	c := dialRaw(t, p)
	if got := c.do("HELLO", "4"); !strings.HasPrefix(got, "-NOPROTO") {
		t.Errorf("HELLO 4 = %q", got)
	}
	got := c.do("HELLO", "3", "AUTH", "default", p.token(ids[0]), "SETNAME", "app")
	if !strings.HasPrefix(got, "%") || !strings.Contains(got, "proto\r\n:3") {
		t.Fatalf("HELLO 3 AUTH = %q", got)
	}
	if got := c.do("CLIENT", "GETNAME"); got != "$3\r\napp\r\n" {
		t.Errorf("CLIENT GETNAME = %q", got)
	}
	c.do("HSET", "h", "f", "v")
	if got := c.do("HGETALL", "h"); got != "%1\r\n$1\r\nf\r\n$1\r\nv\r\n" {
		t.Errorf("HGETALL in RESP3 = %q", got)
	}
	if got := c.do("HELLO", "2"); !strings.HasPrefix(got, "*") {
		t.Errorf("HELLO 2 = %q", got)
	}
	if got := c.do("HGETALL", "h"); got != "*2\r\n$1\r\nf\r\n$1\r\nv\r\n" {
		t.Errorf("HGETALL in RESP2 = %q", got)
	}
	if got := c.do("RESET"); got != "+RESET\r\n" {
		t.Errorf("RESET = %q", got)
	}
	if got := c.do("GET", "k"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Errorf("GET after RESET = %q", got)
	}
}

// TestReauthSwitchesTenantCleanly: AUTH as another tenant on the same
// connection sees only the new tenant's keys, and no subscription or watch
// of the first tenant carries over.
func TestReauthSwitchesTenantCleanly(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	ctx := context.Background()
	must[string](t)(p.client(ids[0]).Set(ctx, "k", "first", 0).Result())
	must[string](t)(p.client(ids[1]).Set(ctx, "k", "second", 0).Result())
	c := dialRaw(t, p)
	c.do("AUTH", p.token(ids[0]))
	if got := c.do("GET", "k"); got != "$5\r\nfirst\r\n" {
		t.Fatalf("GET as the first tenant = %q", got)
	}
	c.do("WATCH", "k")
	c.do("SUBSCRIBE", "ch")
	if got := c.do("AUTH", p.token(ids[1])); got != "+OK\r\n" {
		t.Fatalf("re-AUTH = %q", got)
	}
	if got := c.do("GET", "k"); got != "$6\r\nsecond\r\n" {
		t.Errorf("GET after re-AUTH = %q", got)
	}
	if n := must[int64](t)(p.client(ids[0]).Publish(ctx, "ch", "x").Result()); n != 0 {
		t.Errorf("the first tenant's subscription survived the switch (%d receivers)", n)
	}
	if got := c.do("AUTH", p.token("unknown")); !strings.HasPrefix(got, "-WRONGPASS") {
		t.Errorf("re-AUTH with a bad token = %q", got)
	}
	if got := c.do("GET", "k"); got != "$6\r\nsecond\r\n" {
		t.Errorf("a refused re-AUTH changed the tenant: %q", got)
	}
}

// TestPipelinedRefusalsKeepReplyOrder mixes refused, local and forwarded
// commands in one write.
func TestPipelinedRefusalsKeepReplyOrder(t *testing.T) {
	ids := tenants(1)
	p := startProxy(t, ids...)
	c := dialRaw(t, p)
	c.do("AUTH", p.token(ids[0]))
	var batch strings.Builder
	cmds := [][]string{{"SET", "a", "1"}, {"EVAL", "return 1", "0"}, {"GET", "a"}, {"SELECT", "0"}, {"INCR", "a"}, {"NOSUCH"}, {"GET", "a"}}
	for _, cmd := range cmds {
		fmt.Fprintf(&batch, "*%d\r\n", len(cmd))
		for _, a := range cmd {
			fmt.Fprintf(&batch, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if _, err := c.conn.Write([]byte(batch.String())); err != nil {
		t.Fatal(err)
	}
	want := []string{"+OK", "-ERR scripts", "$1\r\n1", "+OK", ":2", "-ERR unknown command", "$1\r\n2"}
	for i, w := range want {
		if got := c.read(); !strings.HasPrefix(got, w) {
			t.Errorf("reply %d (%v) = %q, want %q...", i, cmds[i], got, w)
		}
	}
}
