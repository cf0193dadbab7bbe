//go:build linux

package redis

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
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

// TestEventLoopSessionsMovingBetweenModes: sessions of two tenants run
// random pipelines mixing commands the event loop serves with ones that
// take the session back to its goroutine (tenant switches, RESET,
// transactions, blocking pops, the connection name), so that they move in
// and out of the loop in the middle of pipelines; every reply must be the
// one a model of each tenant's keys predicts.
func TestEventLoopSessionsMovingBetweenModes(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	tokens := []string{p.token(ids[0]), p.token(ids[1])}
	const sessions, rounds = 8, 30
	errs := make(chan error, sessions)
	var wg sync.WaitGroup
	for n := range sessions {
		wg.Go(func() {
			if err := runModeSwitches(p.addr, tokens, n, rounds, rand.New(rand.NewPCG(uint64(n), 11))); err != nil {
				errs <- fmt.Errorf("session %d: %w", n, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// runModeSwitches is one session of TestEventLoopSessionsMovingBetweenModes:
// its keys are named after slot, so only the other tenant's session of the
// same slot uses the same names.
func runModeSwitches(addr string, tokens []string, slot, rounds int, rng *rand.Rand) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := &replyReader{r: bufio.NewReader(conn)}
	key, ctr := "k"+strconv.Itoa(slot), "c"+strconv.Itoa(slot)
	tenant, name := -1, ""
	values := map[int]string{}
	counts := map[int]int{}
	bulk := func(v string) string { return "$" + strconv.Itoa(len(v)) + "\r\n" + v + "\r\n" }
	get := func() string {
		if v, ok := values[tenant]; ok {
			return bulk(v)
		}
		return "$-1\r\n"
	}
	auth := func(to int) (args []string, want string) {
		if to != tenant {
			name = ""
		}
		tenant = to
		return []string{"AUTH", tokens[to]}, "+OK\r\n"
	}
	for round := range rounds {
		var batch []byte
		var wants []string
		add := func(want string, args ...string) {
			batch = appendRESP(batch, args...)
			wants = append(wants, want)
		}
		if tenant < 0 {
			args, want := auth(rng.IntN(2))
			add(want, args...)
		}
		for range 1 + rng.IntN(8) {
			switch op := rng.IntN(20); {
			case op < 6:
				v := strconv.Itoa(slot) + "-" + strconv.Itoa(round) + "-" + strconv.Itoa(rng.IntN(1000))
				values[tenant] = v
				add("+OK\r\n", "SET", key, v)
			case op < 10:
				add(get(), "GET", key)
			case op < 13:
				counts[tenant]++
				add(":"+strconv.Itoa(counts[tenant])+"\r\n", "INCR", ctr)
			case op == 13:
				args, want := auth(rng.IntN(2))
				add(want, args...)
			case op == 14:
				add("+RESET\r\n", "RESET")
				name, tenant = "", -1
				args, want := auth(rng.IntN(2))
				add(want, args...)
			case op == 15:
				add("+OK\r\n", "MULTI")
				add("+QUEUED\r\n", "INCR", ctr)
				add("+QUEUED\r\n", "GET", key)
				counts[tenant]++
				add("*2\r\n:"+strconv.Itoa(counts[tenant])+"\r\n"+get(), "EXEC")
			case op == 16:
				add("*-1\r\n", "BLPOP", "empty"+strconv.Itoa(slot), "0.01")
			case op == 17:
				name = "n" + strconv.Itoa(rng.IntN(100))
				add("+OK\r\n", "CLIENT", "SETNAME", name)
			case op == 18:
				want := "$-1\r\n"
				if name != "" {
					want = bulk(name)
				}
				add(want, "CLIENT", "GETNAME")
			default:
				add("+PONG\r\n", "PING")
			}
		}
		if _, err := conn.Write(batch); err != nil {
			return err
		}
		for i, want := range wants {
			got, err := r.next()
			if err != nil {
				return err
			}
			if string(got) != want {
				return fmt.Errorf("round %d, reply %d = %q, want %q", round, i, got, want)
			}
		}
	}
	return nil
}
