package redis

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/proxy"
)

// startMuxProxy is a proxy whose sessions share one upstream connection per
// protocol version, so that every session that can share does share.
func startMuxProxy(t *testing.T, tenants ...string) *testProxy {
	t.Helper()
	return startProxyOpts(t, proxy.ListenerConfig{}, Options{UpstreamConnections: 1}, tenants...)
}

// eachServingMode runs f against a proxy whose sessions use the event loop
// (on systems that have one) and against one whose sessions are all served
// by their own goroutines, as TLS clients are.
func eachServingMode(t *testing.T, ids []string, f func(t *testing.T, p *testProxy)) {
	t.Run("event loop", func(t *testing.T) { f(t, startMuxProxy(t, ids...)) })
	t.Run("goroutines", func(t *testing.T) {
		f(t, startProxyOpts(t, proxy.ListenerConfig{}, Options{UpstreamConnections: 1, NoEventLoop: true}, ids...))
	})
}

// sharedIDs are the upstream client ids of the open shared connections of
// protocol proto: the event loop's and the one sessions use from their own
// goroutines.
func (p *testProxy) sharedIDs(proto int) []int64 {
	var ids []int64
	for _, l := range p.engine.loops {
		if id := l.upstreamID(proto); id != 0 {
			ids = append(ids, id)
		}
	}
	if l := p.engine.mux.conn(proto, 0).cur.Load(); l != nil && !l.failed.Load() {
		ids = append(ids, l.up.id)
	}
	return ids
}

// upstreamClient returns the upstream's CLIENT LIST fields of connection id.
func (p *testProxy) upstreamClient(id int64) map[string]string {
	p.t.Helper()
	line := must[string](p.t)(p.upstream.Do(context.Background(), "CLIENT", "LIST", "ID", strconv.FormatInt(id, 10)).Text())
	fields := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			fields[k] = v
		}
	}
	if fields["id"] != strconv.FormatInt(id, 10) {
		p.t.Fatalf("no upstream connection %d: %q", id, line)
	}
	return fields
}

// send writes args as one command without reading the reply.
func (c *rawConn) send(args ...string) {
	c.t.Helper()
	if _, err := c.conn.Write(appendRESP(nil, args...)); err != nil {
		c.t.Fatal(err)
	}
}

// assertShared checks that the shared connection of proto is open and did
// not run command name last (the sessions' commands that need a dedicated
// connection must not reach it).
func (p *testProxy) assertNotShared(proto int, name string) {
	p.t.Helper()
	ids := p.sharedIDs(proto)
	if len(ids) == 0 {
		p.t.Fatalf("no shared RESP%d connection open", proto)
	}
	for _, id := range ids {
		f := p.upstreamClient(id)
		if f["cmd"] == name || strings.HasPrefix(f["cmd"], name+"|") {
			p.t.Errorf("%s ran on the shared connection: %v", name, f)
		}
		if f["sub"] != "0" || f["psub"] != "0" || f["multi"] != "-1" || strings.Contains(f["flags"], "b") {
			p.t.Errorf("the shared connection holds per-connection state: %v", f)
		}
	}
}

// TestBlockingCommandsGetADedicatedConnection: while one session blocks,
// another session of the same tenant on the same shared connection is
// answered at once, and the blocking command never ran on the shared one.
func TestBlockingCommandsGetADedicatedConnection(t *testing.T) {
	ids := tenants(1)
	p := startMuxProxy(t, ids...)
	for _, tc := range []struct {
		name  string
		setup []string
		cmd   []string
	}{
		{"blpop", nil, []string{"BLPOP", "q", "1"}},
		{"brpop", nil, []string{"BRPOP", "q", "1"}},
		{"blmove", nil, []string{"BLMOVE", "q", "d", "LEFT", "RIGHT", "1"}},
		{"brpoplpush", nil, []string{"BRPOPLPUSH", "q", "d", "1"}},
		{"blmpop", nil, []string{"BLMPOP", "1", "1", "q", "LEFT"}},
		{"bzpopmin", nil, []string{"BZPOPMIN", "z", "1"}},
		{"bzpopmax", nil, []string{"BZPOPMAX", "z", "1"}},
		{"bzmpop", nil, []string{"BZMPOP", "1", "1", "z", "MIN"}},
		{"xread", nil, []string{"XREAD", "BLOCK", "1000", "STREAMS", "s", "$"}},
		{"xreadgroup", []string{"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"}, []string{"XREADGROUP", "GROUP", "g", "c", "BLOCK", "1000", "STREAMS", "s", ">"}},
		{"wait", nil, []string{"WAIT", "1", "1000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blocked, witness := p.session(t, ids[0]), p.session(t, ids[0])
			if tc.setup != nil {
				if got := blocked.do(tc.setup...); got[0] == '-' {
					t.Fatalf("%q: %s", tc.setup, got)
				}
			}
			witness.do("PING")
			start := time.Now()
			blocked.send(tc.cmd...)
			time.Sleep(100 * time.Millisecond)
			if got := witness.do("PING"); got != "+PONG\r\n" {
				t.Fatalf("PING beside a blocked %s = %q", tc.name, got)
			}
			if waited := time.Since(start); waited > 700*time.Millisecond {
				t.Errorf("PING beside a blocked %s took %s: the shared connection was blocked", tc.name, waited)
			}
			p.assertNotShared(2, tc.name)
			if got := blocked.read(); got[0] == '-' {
				t.Errorf("%s = %q", tc.name, got)
			}
		})
	}
}

// TestNonBlockingXReadStaysShared: XREAD without BLOCK needs no dedicated
// connection (and is not slowed by taking one).
func TestNonBlockingXReadStaysShared(t *testing.T) {
	ids := tenants(1)
	p := startMuxProxy(t, ids...)
	c := p.session(t, ids[0])
	c.do("XADD", "s", "*", "f", "v")
	if got := c.do("XREAD", "COUNT", "1", "STREAMS", "s", "0"); !strings.Contains(got, "$1\r\ns\r\n") {
		t.Fatalf("XREAD = %q", got)
	}
	ran := false
	for _, id := range p.sharedIDs(2) {
		ran = ran || p.upstreamClient(id)["cmd"] == "xread"
	}
	if !ran {
		t.Errorf("XREAD without BLOCK did not run on a shared connection")
	}
}

// TestTransactionsGetADedicatedConnection: MULTI queues only its own
// session's commands, and WATCH guards the session's own transaction.
func TestTransactionsGetADedicatedConnection(t *testing.T) {
	ids := tenants(1)
	p := startMuxProxy(t, ids...)
	tx, other := p.session(t, ids[0]), p.session(t, ids[0])
	other.do("PING")

	tx.do("MULTI")
	if got := tx.do("SET", "k", "tx"); got != "+QUEUED\r\n" {
		t.Fatalf("SET in MULTI = %q", got)
	}
	if got := other.do("SET", "other", "1"); got != "+OK\r\n" {
		t.Fatalf("another session's SET while a transaction is open = %q: it joined the transaction", got)
	}
	p.assertNotShared(2, "multi")
	if got := tx.do("EXEC"); got != "*1\r\n+OK\r\n" {
		t.Fatalf("EXEC = %q", got)
	}

	watcher := p.session(t, ids[0])
	watcher.do("WATCH", "k")
	p.assertNotShared(2, "watch")
	other.do("SET", "k", "changed")
	watcher.do("MULTI")
	watcher.do("SET", "k", "watcher")
	if got := watcher.do("EXEC"); got != "*-1\r\n" {
		t.Errorf("EXEC after the watched key changed = %q; want the transaction aborted", got)
	}
	if got := other.do("GET", "k"); got != "$7\r\nchanged\r\n" {
		t.Errorf("GET k = %q", got)
	}
}

// TestSubscriptionsGetADedicatedConnection: a subscriber's connection is in
// subscribed mode; the shared one never is, so its other sessions get
// ordinary replies.
func TestSubscriptionsGetADedicatedConnection(t *testing.T) {
	ids := tenants(1)
	p := startMuxProxy(t, ids...)
	for _, cmd := range []string{"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"} {
		t.Run(cmd, func(t *testing.T) {
			sub, other := p.session(t, ids[0]), p.session(t, ids[0])
			other.do("PING")
			if got := sub.do(cmd, "news"); !strings.Contains(got, "news") {
				t.Fatalf("%s = %q", cmd, got)
			}
			if got := other.do("PING"); got != "+PONG\r\n" {
				t.Fatalf("PING of another session = %q", got)
			}
			p.assertNotShared(2, strings.ToLower(cmd))
			publish := "PUBLISH"
			if cmd == "SSUBSCRIBE" {
				publish = "SPUBLISH"
			}
			if got := other.do(publish, "news", "hello"); got != "+OK\r\n" && got != ":1\r\n" {
				t.Fatalf("%s = %q", publish, got)
			}
			if got := sub.read(); !strings.Contains(got, "hello") {
				t.Errorf("the subscriber got %q", got)
			}
		})
	}
}

// TestClientStateIsPerSession: a connection name set on a shared connection
// is the session's own (the proxy keeps it), reaches the session's
// dedicated connection when it gets one, and CLIENT ID and INFO answer for
// that dedicated connection.
func TestClientStateIsPerSession(t *testing.T) {
	ids := tenants(2)
	eachServingMode(t, ids, func(t *testing.T, p *testProxy) {
		named, other := p.session(t, ids[0]), p.session(t, ids[0])
		other.do("PING")
		if got := named.do("CLIENT", "SETNAME", "alice"); got != "+OK\r\n" {
			t.Fatalf("CLIENT SETNAME = %q", got)
		}
		_, setinfo := p.engine.rewriter.Load().table.commands["client"].subcommands["client|setinfo"] // Redis 7.2
		if setinfo {
			if got := named.do("CLIENT", "SETINFO", "LIB-NAME", "mylib"); got != "+OK\r\n" {
				t.Fatalf("CLIENT SETINFO = %q", got)
			}
		}
		if got := named.do("CLIENT", "SETNAME", "a b"); !strings.HasPrefix(got, "-ERR Client names cannot contain spaces") {
			t.Errorf("CLIENT SETNAME 'a b' = %q", got)
		}
		if got := other.do("CLIENT", "GETNAME"); got != "$-1\r\n" {
			t.Errorf("another session's CLIENT GETNAME = %q", got)
		}
		if got := named.do("CLIENT", "GETNAME"); got != "$5\r\nalice\r\n" {
			t.Errorf("CLIENT GETNAME = %q", got)
		}
		shared := append(p.sharedIDs(2), p.sharedIDs(3)...)
		for _, id := range shared {
			if f := p.upstreamClient(id); f["name"] != "" || f["lib-name"] != "" {
				t.Errorf("the shared connection took the session's name: %v", f)
			}
		}

		reply := named.do("CLIENT", "ID")
		id, err := strconv.ParseInt(strings.TrimSpace(reply[1:]), 10, 64)
		if err != nil || slices.Contains(shared, id) {
			t.Fatalf("CLIENT ID = %q: not a dedicated connection's (shared: %d)", reply, shared)
		}
		if got := named.do("CLIENT", "INFO"); !strings.Contains(got, "id="+strconv.FormatInt(id, 10)+" ") || !strings.Contains(got, " name=alice ") || setinfo && !strings.Contains(got, " lib-name=mylib ") {
			t.Errorf("CLIENT INFO = %q", got)
		}
		if got := named.do("CLIENT", "GETNAME"); got != "$5\r\nalice\r\n" {
			t.Errorf("CLIENT GETNAME on the dedicated connection = %q", got)
		}
		if got := other.do("CLIENT", "GETNAME"); got != "$-1\r\n" {
			t.Errorf("another session's CLIENT GETNAME = %q", got)
		}

		// A new tenant session starts without a name, back on a shared connection.
		named.do("AUTH", p.token(ids[1]))
		if got := named.do("CLIENT", "GETNAME"); got != "$-1\r\n" {
			t.Errorf("CLIENT GETNAME after a tenant switch = %q", got)
		}
	})
}

// TestConnectionModesGetADedicatedConnection: READONLY, READWRITE and
// ASKING set a mode on their connection (in a cluster); they never run on a
// shared connection.
func TestConnectionModesGetADedicatedConnection(t *testing.T) {
	ids := tenants(1)
	p := startMuxProxy(t, ids...)
	for _, cmd := range []string{"READONLY", "READWRITE", "ASKING"} {
		c := p.session(t, ids[0])
		c.do("PING")
		c.do(cmd) // an error without cluster mode, relayed
		p.assertNotShared(2, strings.ToLower(cmd))
	}
}

// TestBindingOfTheServerCommandTable: every command the upstream flags as
// blocking, and every @connection or @transaction command not known to be
// harmless, needs a dedicated connection.
func TestBindingOfTheServerCommandTable(t *testing.T) {
	p := startMuxProxy(t)
	table := p.engine.rewriter.Load().table
	var all []*commandInfo
	for _, info := range table.commands {
		all = append(all, info)
		for _, sub := range info.subcommands {
			all = append(all, sub)
		}
	}
	args := [][]byte{[]byte("x"), []byte("x")}
	for _, info := range all {
		b := bindingOf(info, args)
		switch {
		case info.name == "xread" || info.name == "xreadgroup":
		case info.blocking && b != ownConn:
			t.Errorf("%s is flagged blocking but gets binding %d", info.name, b)
		case info.categories&(catConnection|catTransaction) != 0 && b == anyConn && !sharedConnCommands[info.name]:
			t.Errorf("%s may hold connection state but runs on a shared connection", info.name)
		}
	}
	for name, want := range map[string]connBinding{
		"get": anyConn, "set": anyConn, "ping": anyConn, "exec": anyConn, "multi": ownConn, "watch": ownConn,
		"blpop": ownConn, "subscribe": ownConn, "client|id": ownConn, "client|setname": clientState,
	} {
		container, sub, _ := strings.Cut(name, "|")
		info := table.commands[container]
		if sub != "" {
			info = info.subcommands[name]
		}
		if got := bindingOf(info, args); got != want {
			t.Errorf("binding of %s = %d, want %d", name, got, want)
		}
	}
}

// TestSharedConnectionKeepsSessionsApart: many sessions of several tenants,
// RESP2 and RESP3, pipelining random batches of commands with values of
// random sizes over one shared connection per protocol: every session gets
// exactly its own replies.
func TestSharedConnectionKeepsSessionsApart(t *testing.T) {
	ids := tenants(3)
	eachServingMode(t, ids, func(t *testing.T, p *testProxy) {
		const sessions, rounds = 24, 40
		var wg sync.WaitGroup
		errs := make(chan error, sessions)
		for n := range sessions {
			wg.Go(func() {
				tenant := ids[n%len(ids)]
				proto := 2 + n%2
				if err := exerciseSession(p.addr, p.token(tenant), proto, n/len(ids), rounds, rand.New(rand.NewPCG(uint64(n), 7))); err != nil {
					errs <- fmt.Errorf("session %d (tenant %s, RESP%d): %w", n, tenant, proto, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if len(p.sharedIDs(2)) == 0 || len(p.sharedIDs(3)) == 0 {
			t.Errorf("shared connections: RESP2 %d, RESP3 %d", p.sharedIDs(2), p.sharedIDs(3))
		}
	})
}

// exerciseSession runs rounds of random pipelines on keys named after
// slot, which sessions of other tenants use too, and checks every reply.
func exerciseSession(addr, token string, proto, slot, rounds int, rng *rand.Rand) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &respClient{conn: conn, r: &replyReader{r: bufio.NewReader(conn)}}
	if proto == 3 {
		if reply, err := c.roundTrip(appendRESP(nil, "HELLO", "3", "AUTH", "default", token)); err != nil || reply[0] != '%' {
			return fmt.Errorf("HELLO 3: %q %v", reply, err)
		}
	} else if reply, err := c.roundTrip(appendRESP(nil, "AUTH", token)); err != nil || string(reply) != "+OK\r\n" {
		return fmt.Errorf("AUTH: %q %v", reply, err)
	}
	counter := 0
	values := map[string][]byte{}
	for range rounds {
		var batch []byte
		var want [][]byte
		for range 1 + rng.IntN(20) {
			key := "k" + strconv.Itoa(slot) + ":" + strconv.Itoa(rng.IntN(4))
			switch rng.IntN(3) {
			case 0:
				size := rng.IntN(2000)
				if rng.IntN(10) == 0 {
					size = 20000 + rng.IntN(100000)
				}
				v := bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, size)
				values[key] = v
				batch = appendRESP(batch, "SET", key, string(v))
				want = append(want, []byte("+OK\r\n"))
			case 1:
				batch = appendRESP(batch, "GET", key)
				if v, ok := values[key]; ok {
					want = append(want, fmt.Appendf(nil, "$%d\r\n%s\r\n", len(v), v))
				} else if proto == 3 {
					want = append(want, []byte("_\r\n"))
				} else {
					want = append(want, []byte("$-1\r\n"))
				}
			default:
				counter++
				batch = appendRESP(batch, "INCR", "counter"+strconv.Itoa(slot))
				want = append(want, fmt.Appendf(nil, ":%d\r\n", counter))
			}
		}
		if _, err := conn.Write(batch); err != nil {
			return err
		}
		for i, w := range want {
			got, err := c.r.next()
			if err != nil {
				return err
			}
			if !bytes.Equal(got, w) {
				return fmt.Errorf("reply %d = %q, want %q", i, truncate(got), truncate(w))
			}
		}
	}
	return nil
}

// respClient is a raw RESP client safe to use from any goroutine (it
// reports errors instead of failing the test).
type respClient struct {
	conn net.Conn
	r    *replyReader
}

func (c *respClient) roundTrip(cmd []byte) ([]byte, error) {
	if _, err := c.conn.Write(cmd); err != nil {
		return nil, err
	}
	return c.r.next()
}

func dialClient(addr, token string) (*respClient, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &respClient{conn: conn, r: &replyReader{r: bufio.NewReader(conn)}}
	if reply, err := c.roundTrip(appendRESP(nil, "AUTH", token)); err != nil || string(reply) != "+OK\r\n" {
		conn.Close()
		return nil, fmt.Errorf("AUTH: %q %v", reply, err)
	}
	return c, nil
}

// TestSharedConnectionLossEndsOnlyTheSessionsInFlight: when the shared
// connection is killed under load, sessions with commands in flight are
// closed (their outcome is unknown), no session ever gets a wrong reply,
// and the proxy reconnects for the next commands.
func TestSharedConnectionLossEndsOnlyTheSessionsInFlight(t *testing.T) {
	ids := tenants(1)
	eachServingMode(t, ids, func(t *testing.T, p *testProxy) {
		const workers, depth = 16, 20
		var closed, correct atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for n := range workers {
			wg.Go(func() {
				c, err := dialClient(p.addr, p.token(ids[0]))
				if err != nil {
					errs <- err
					return
				}
				defer c.conn.Close()
				var batch []byte
				for range depth {
					batch = appendRESP(batch, "INCR", "ctr"+strconv.Itoa(n))
				}
				for i := 0; ; {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := c.conn.Write(batch); err != nil {
						closed.Add(1)
						return
					}
					for range depth {
						i++
						reply, err := c.r.next()
						if err != nil {
							closed.Add(1) // the proxy closed the session
							return
						}
						if want := fmt.Sprintf(":%d\r\n", i); string(reply) != want {
							errs <- fmt.Errorf("worker %d: INCR = %q, want %q", n, reply, want)
							return
						}
						correct.Add(1)
					}
				}
			})
		}
		var killed []int64
		for range 3 {
			time.Sleep(100 * time.Millisecond)
			for _, id := range p.sharedIDs(2) {
				if err := p.upstream.ClientKillByFilter(context.Background(), "ID", strconv.FormatInt(id, 10)).Err(); err != nil {
					t.Fatal(err)
				}
				killed = append(killed, id)
			}
		}
		time.Sleep(100 * time.Millisecond)
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		t.Logf("%d correct replies; %d of %d sessions closed by %d losses", correct.Load(), closed.Load(), workers, len(killed))
		if len(killed) == 0 || closed.Load() == 0 {
			t.Errorf("the test did not exercise a loss with commands in flight: %d kills, %d sessions closed", len(killed), closed.Load())
		}
		c, err := dialClient(p.addr, p.token(ids[0]))
		if err != nil {
			t.Fatal(err)
		}
		defer c.conn.Close()
		if reply, err := c.roundTrip(appendRESP(nil, "PING")); err != nil || string(reply) != "+PONG\r\n" {
			t.Fatalf("PING after the loss = %q %v", reply, err)
		}
		shared := p.sharedIDs(2)
		if len(shared) == 0 || slices.ContainsFunc(shared, func(id int64) bool { return slices.Contains(killed, id) }) {
			t.Errorf("shared connections after the losses: %d (killed %d)", shared, killed)
		}
	})
}

// TestStalledClientDoesNotDelayOthers: a client that pipelines large
// replies and never reads them blocks only its own session; the other
// sessions on the same shared connection keep their pace.
func TestStalledClientDoesNotDelayOthers(t *testing.T) {
	ids := tenants(1)
	eachServingMode(t, ids, func(t *testing.T, p *testProxy) {
		stalled := p.session(t, ids[0])
		stalled.do("SET", "big", strings.Repeat("x", 256<<10))
		var batch []byte
		for range 100 {
			batch = appendRESP(batch, "GET", "big") // 25 MiB of replies, never read
		}
		if _, err := stalled.conn.Write(batch); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)

		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for n := range 4 {
			wg.Go(func() {
				c, err := dialClient(p.addr, p.token(ids[0]))
				if err != nil {
					errs <- err
					return
				}
				defer c.conn.Close()
				_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
				for i := range 200 {
					reply, err := c.roundTrip(appendRESP(nil, "INCR", "n"+strconv.Itoa(n)))
					if err != nil {
						errs <- err
						return
					}
					if want := fmt.Sprintf(":%d\r\n", i+1); string(reply) != want {
						errs <- fmt.Errorf("INCR = %q, want %q", truncate(reply), want)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("800 round trips beside a stalled client took %s", took)
		}
		// The stalled client gets every reply once it reads.
		want := "$262144\r\n" + strings.Repeat("x", 256<<10) + "\r\n"
		for i := range 100 {
			if got := stalled.read(); got != want {
				t.Fatalf("reply %d to the stalled client = %q", i, truncate([]byte(got)))
			}
		}
	})
}

// TestUnreachableUpstreamAnswersEachCommand: when no shared connection can
// be opened, every command of the batch gets an error in its place and the
// session stays usable.
func TestUnreachableUpstreamAnswersEachCommand(t *testing.T) {
	ids := tenants(1)
	gate, open := gatedUpstream(t)
	p := startProxyOpts(t, proxy.ListenerConfig{}, Options{Upstream: gate, UpstreamConnections: 1}, ids...)
	open.Store(false)
	c := p.session(t, ids[0])
	c.send("SET", "k", "v")
	c.send("SELECT", "0") // answered by the proxy, in its place
	c.send("GET", "k")
	for _, want := range []string{"-ERR the proxy cannot reach Redis right now\r\n", "+OK\r\n", "-ERR the proxy cannot reach Redis right now\r\n"} {
		if got := c.read(); got != want {
			t.Errorf("reply = %q, want %q", got, want)
		}
	}
	// A command that needs a dedicated connection fails alike, and leaves
	// no transaction behind.
	if got := c.do("MULTI"); got != "-ERR the proxy cannot reach Redis right now\r\n" {
		t.Errorf("MULTI = %q", got)
	}
	open.Store(true)
	if got := c.do("PING"); got != "+PONG\r\n" {
		t.Errorf("PING once the upstream is back = %q", got)
	}
	if got := c.do("SELECT", "0"); got != "+OK\r\n" {
		t.Errorf("SELECT after the failed MULTI = %q: the proxy thinks a transaction is open", got)
	}
}

// gatedUpstream is a relay to the test Redis that refuses new connections
// while open is false; it returns the relay's URL.
func gatedUpstream(t *testing.T) (url string, open *atomic.Bool) {
	t.Helper()
	opts, err := goredis.ParseURL(testutil.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	target := opts.Addr
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	open = &atomic.Bool{}
	open.Store(true)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil || !open.Load() {
				_ = conn.Close()
				if up != nil {
					_ = up.Close()
				}
				continue
			}
			go func() { _, _ = io.Copy(up, conn); _ = up.Close() }()
			go func() { _, _ = io.Copy(conn, up); _ = conn.Close() }()
		}
	}()
	return "redis://" + ln.Addr().String() + "/0", open
}

// TestUpstreamConnectionMetrics: tenantgate_upstream_connections counts the
// shared connections open and the sessions' dedicated ones.
func TestUpstreamConnectionMetrics(t *testing.T) {
	ids := tenants(2)
	p := startMuxProxy(t, ids...)
	gauge := func(state string) float64 { return p.metric("tenantgate_upstream_connections", "state", state) }
	waitGauge := func(state string, want float64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for gauge(state) != want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := gauge(state); got != want {
			t.Fatalf("%s upstream connections = %v, want %v", state, got, want)
		}
	}
	c := p.session(t, ids[0])
	c.do("PING")
	waitGauge("shared", 1)
	waitGauge("dedicated", 0)
	c.do("MULTI")
	waitGauge("dedicated", 1)
	c.do("DISCARD")
	c.do("AUTH", p.token(ids[1])) // another tenant: a fresh start, back on a shared connection
	waitGauge("dedicated", 0)
	c.do("WATCH", "k")
	waitGauge("dedicated", 1)
	_ = c.conn.Close()
	waitGauge("dedicated", 0)
}
