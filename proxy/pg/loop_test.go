//go:build linux

package pg

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tenantgate/tenantgate/internal/proxytest"
	"github.com/tenantgate/tenantgate/internal/testutil"
)

// backends counts the proxy's server connections, as the server sees them.
func (e *pgEnv) backends() int {
	e.t.Helper()
	var n int
	if err := e.admin().QueryRow(context.Background(),
		"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename <> current_user").Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// Between transactions the loop keeps the server connection (its pool slot
// with it), so the next transaction of any of its sessions needs no pool
// round trip; two tenants take turns on it.
func TestEventLoopKeepsConnection(t *testing.T) {
	env := newPGEnv(t, poolOf(1))
	if env.engine.loop == nil {
		t.Fatal("no event loop on Linux")
	}
	a, b := env.client(tenantA), env.client(tenantB)
	for i := range 5 {
		mustExec(t, a, "INSERT INTO items (id, name) VALUES ($1, 'a')", i)
		mustExec(t, b, "INSERT INTO items (id, name) VALUES ($1, 'b')", i)
	}
	testutil.WaitFor(t, "the loop to keep the connection", func() bool { return env.engine.pool.loopIdle.Load() == 1 })
	if n := env.backends(); n != 1 {
		t.Fatalf("%d server connections, want 1", n)
	}
	for _, c := range []struct {
		conn *pgx.Conn
		want string
	}{{a, "a"}, {b, "b"}} {
		got := queryStrings(t, c.conn, "SELECT DISTINCT name FROM items")
		if len(got) != 1 || got[0] != c.want {
			t.Fatalf("tenant sees %v, want only %q", got, c.want)
		}
	}
}

// A session goroutine waiting for a slot gets the connection the loop keeps:
// with pool_size 1, a session pinned by a session-level SET (served by its
// goroutine) runs while the loop's sessions are between transactions.
func TestEventLoopKeptConnectionsYield(t *testing.T) {
	env := newPGEnv(t, func(o *Options) { o.PoolSize = 1; o.PoolTimeout = 2 * time.Second })
	a := env.client(tenantA)
	mustExec(t, a, "INSERT INTO items (id, name) VALUES (1, 'a')")
	testutil.WaitFor(t, "the loop to keep the connection", func() bool { return env.engine.pool.loopIdle.Load() == 1 })
	b := env.client(tenantB)
	mustExec(t, b, "SET search_path = public") // pins B's session to a connection
	if got := names(t, b); len(got) != 0 {
		t.Fatalf("B sees %v", got)
	}
	_ = b.Close(context.Background())
	if got := names(t, a); len(got) != 1 || got[0] != "a" {
		t.Fatalf("A sees %v", got)
	}
}

// A kept connection the server ends is dropped at once: the next
// statement gets a new connection, not an error.
func TestEventLoopKeptConnectionEndedByServer(t *testing.T) {
	env := newPGEnv(t, poolOf(1))
	a := env.client(tenantA)
	mustExec(t, a, "INSERT INTO items (id, name) VALUES (1, 'a')")
	testutil.WaitFor(t, "the loop to keep the connection", func() bool { return env.engine.pool.loopIdle.Load() == 1 })
	mustExec(t, env.admin(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND usename <> current_user")
	testutil.WaitFor(t, "the loop to drop the ended connection", func() bool { return env.engine.pool.loopIdle.Load() == 0 })
	if got := names(t, a); len(got) != 1 || got[0] != "a" {
		t.Fatalf("A sees %v", got)
	}
}

// Clients waiting in the loop for the one server connection are served
// once it is free, without error, each with its own tenant.
func TestEventLoopWaitersServed(t *testing.T) {
	env := newPGEnv(t, func(o *Options) { o.PoolSize = 1; o.PoolTimeout = 5 * time.Second })
	ctx := context.Background()
	tx := holdTheConnection(t, env)
	tenants := []string{tenantA, tenantB, tenantA, tenantB, tenantB}
	clients := make([]*pgx.Conn, len(tenants))
	for i, tenant := range tenants {
		clients[i] = env.client(tenant)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(clients))
	for i, c := range clients {
		wg.Go(func() {
			_, errs[i] = c.Exec(ctx, "INSERT INTO items (id, name) VALUES ($1, $2)", i, tenants[i])
		})
	}
	time.Sleep(300 * time.Millisecond) // they wait for the connection
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	want := map[string][]string{tenantA: {"acme", "acme", "held"}, tenantB: {"globex", "globex", "globex"}}
	for tenant, rows := range want {
		if got := queryStrings(t, env.client(tenant), "SELECT name FROM items ORDER BY name"); !slices.Equal(got, rows) {
			t.Fatalf("%s sees %v, want %v", tenant, got, rows)
		}
	}
}

// Messages larger than the reader's buffer arrive in pieces and are put
// together by the loop; answers larger than a socket's buffer wait in the
// client's backlog. Both come through whole.
func TestEventLoopLargeMessages(t *testing.T) {
	env := newPGEnv(t, poolOf(1))
	ctx := context.Background()
	a := env.client(tenantA)
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	mustExec(t, a, "INSERT INTO items (id, name) VALUES (1, $1)", big)
	simple := env.clientMode(tenantA, pgx.QueryExecModeSimpleProtocol)
	literal := strings.Repeat("x", 200<<10)
	mustExec(t, simple, "INSERT INTO items (id, name) VALUES (2, '"+literal+"')")
	var total int64
	var first string
	err := a.QueryRow(ctx, "SELECT sum(length(repeat(name, 4))), min(name) FROM items CROSS JOIN generate_series(1, 4)").Scan(&total, &first)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(4 * 4 * (len(big) + len(literal))); total != want {
		t.Fatalf("sum %d, want %d", total, want)
	}
	rows, err := simple.Query(ctx, "SELECT repeat(name, 4) FROM items CROSS JOIN generate_series(1, 4) ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 8 || got[0] != strings.Repeat(big, 4) || got[7] != strings.Repeat(literal, 4) {
		t.Fatalf("%d rows, first intact %v, last intact %v", len(got), got[0] == strings.Repeat(big, 4), got[7] == strings.Repeat(literal, 4))
	}
	if got := queryStrings(t, env.client(tenantB), "SELECT name FROM items"); len(got) != 0 {
		t.Fatalf("B sees %d rows", len(got))
	}
}

// A session served by the loop ends when its token expires, as one served
// by its goroutine does: the connection is closed and the end audited.
func TestSessionEndsAtTokenExpiry(t *testing.T) {
	eachServingMode(t, func(t *testing.T, mode func(*Options)) {
		env := newPGEnv(t, withMode(nil, mode))
		u, err := url.Parse(env.url(tenantA))
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword("app", proxytest.TokenFor(t, tenantA, 1500*time.Millisecond))
		c := connect(t, u.String())
		mustExec(t, c, "INSERT INTO items (id, name) VALUES (1, 'a')")
		time.Sleep(2500 * time.Millisecond)
		if _, err := c.Exec(context.Background(), "SELECT 1"); err == nil {
			t.Fatal("a statement ran after the token expired")
		}
		testutil.WaitFor(t, "the session end in the audit log", func() bool { return strings.Contains(env.auditLog(), "expired") })
		if got := names(t, env.client(tenantA)); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("A sees %v", got)
		}
	})
}

// Draining ends an idle session at once (FATAL 57P01) and lets a session in
// a transaction finish it first, in the loop as on the goroutines.
func TestDrainEndsSessionsBetweenTransactions(t *testing.T) {
	eachServingMode(t, func(t *testing.T, mode func(*Options)) {
		env := newPGEnv(t, withMode(nil, mode))
		ctx := context.Background()
		idle, busy := env.client(tenantA), env.client(tenantB)
		mustExec(t, idle, "INSERT INTO items (id, name) VALUES (1, 'a')")
		tx, err := busy.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustExecTx(t, tx, "INSERT INTO items (id, name) VALUES (1, 'b')")
		shutdown := make(chan error, 1)
		go func() {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			shutdown <- env.listener.Shutdown(sctx)
		}()
		time.Sleep(300 * time.Millisecond)
		var pe *pgconn.PgError
		if _, err := idle.Exec(ctx, "SELECT 1"); !errors.As(err, &pe) || pe.Code != "57P01" {
			t.Fatalf("idle session after the drain began: %v, want FATAL 57P01", err)
		}
		mustExecTx(t, tx, "INSERT INTO items (id, name) VALUES (2, 'b')")
		if err := tx.Commit(ctx); err != nil {
			t.Fatalf("commit during the drain: %v", err)
		}
		if err := <-shutdown; err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		rows := env.allRows()
		if !slices.Equal(rows, []string{"acme:a", "globex:b", "globex:b"}) {
			t.Fatalf("rows %v", rows)
		}
	})
}

// A client waiting in the loop is served when the connection it waits for
// is released past max_lifetime (closed, not handed over): the freed slot
// lets it dial a new one.
func TestEventLoopWaiterServedAfterExpiredRelease(t *testing.T) {
	env := newPGEnv(t, func(o *Options) {
		o.PoolSize = 1
		o.PoolTimeout = 5 * time.Second
		o.MaxLifetime = 200 * time.Millisecond
	})
	ctx := context.Background()
	holder, waiter := env.client(tenantA), env.client(tenantB)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustExecTx(t, tx, "INSERT INTO items (id, name) VALUES (1, 'a')")
	done := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 4*time.Second)
		defer cancel()
		_, err := waiter.Exec(wctx, "INSERT INTO items (id, name) VALUES (1, 'b')")
		done <- err
	}()
	time.Sleep(400 * time.Millisecond) // the connection outlives max_lifetime
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiting client: %v", err)
	}
	if rows := env.allRows(); !slices.Equal(rows, []string{"acme:a", "globex:b"}) {
		t.Fatalf("rows %v", rows)
	}
}

// A client that keeps sending while it waits for a server connection is
// served in order once one is free, and the loop does not spin on its
// unread input meanwhile (its socket stays readable: a level-triggered
// event the loop ignored would come back at every epoll_wait).
func TestEventLoopWaiterSendingMore(t *testing.T) {
	env := newPGEnv(t, func(o *Options) { o.PoolSize = 1; o.PoolTimeout = 10 * time.Second })
	ctx := context.Background()
	tx := holdTheConnection(t, env)
	c := env.raw(tenantB)
	c.send(&pgproto3.Query{String: "INSERT INTO items (id, name) VALUES (1, 'first')"})
	time.Sleep(100 * time.Millisecond) // it waits for the connection
	c.send(&pgproto3.Query{String: "INSERT INTO items (id, name) VALUES (2, 'second')"})
	before := processCPU(t)
	time.Sleep(500 * time.Millisecond)
	if used := processCPU(t) - before; used > 250*time.Millisecond {
		t.Errorf("the process used %v of CPU in 500ms while a client waited", used)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		c.expect("CommandComplete", "ReadyForQuery")
	}
	if got := queryStrings(t, env.client(tenantB), "SELECT name FROM items ORDER BY id"); !slices.Equal(got, []string{"first", "second"}) {
		t.Fatalf("globex sees %v", got)
	}
}

// holdTheConnection starts a transaction of tenant A that holds the proxy's
// only server connection (pool_size 1) until it ends; it has inserted the
// row 'held'.
func holdTheConnection(t *testing.T, env *pgEnv) pgx.Tx {
	t.Helper()
	tx, err := env.client(tenantA).Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mustExecTx(t, tx, "INSERT INTO items (id, name) VALUES (100, 'held')")
	return tx
}

// processCPU is the CPU time the test process has used.
func processCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
