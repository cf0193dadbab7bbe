package pg

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantgate/tenantgate/internal/testutil"
)

func poolOf(size int) func(*Options) {
	return func(o *Options) { o.PoolSize = size }
}

// tenantOf returns the tenant setting the server holds for c's statements.
func tenantOf(t *testing.T, c *pgx.Conn) string {
	t.Helper()
	var s string
	if err := c.QueryRow(context.Background(), "SELECT current_setting('app.tenant_id', true)").Scan(&s); err != nil {
		t.Fatalf("read tenant: %v", err)
	}
	return s
}

// With one server connection, two tenants interleave statements,
// transactions and named prepared statements; no row crosses.
func TestOneServerConnectionTwoTenants(t *testing.T) {
	eachServingMode(t, func(t *testing.T, mode func(*Options)) {
		env := newPGEnv(t, withMode(poolOf(1), mode))
		ctx := context.Background()
		a, b := env.client(tenantA), env.client(tenantB)
		for i := 1; i <= 3; i++ {
			mustExec(t, a, "INSERT INTO items (id, name) VALUES ($1, $2)", i, "a"+string(rune('0'+i)))
			mustExec(t, b, "INSERT INTO items (id, name) VALUES ($1, $2)", i, "b"+string(rune('0'+i)))
		}
		// Named prepared statements (pgx's default mode) prepared by one tenant
		// and executed by the other on the same server connection.
		for range 3 {
			if got := names(t, a); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
				t.Fatalf("A sees %v", got)
			}
			if got := names(t, b); !slices.Equal(got, []string{"b1", "b2", "b3"}) {
				t.Fatalf("B sees %v", got)
			}
		}
		// Explicitly prepared by name, deallocated, prepared again.
		if _, err := a.Prepare(ctx, "mine", "SELECT name FROM items WHERE id = $1"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Prepare(ctx, "mine", "SELECT name FROM items WHERE id = $1"); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			c    *pgx.Conn
			want string
		}{{a, "a2"}, {b, "b2"}, {a, "a2"}} {
			var got string
			if err := tc.c.QueryRow(ctx, "mine", 2).Scan(&got); err != nil || got != tc.want {
				t.Fatalf("prepared: %q, %v; want %q", got, err, tc.want)
			}
		}
		if err := a.Deallocate(ctx, "mine"); err != nil {
			t.Fatal(err)
		}

		// A transaction holds the only server connection: B waits for it.
		tx, err := a.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustExecTx(t, tx, "UPDATE items SET name = 'a1*' WHERE id = 1")
		bDone := make(chan []string, 1)
		go func() {
			rows, err := b.Query(ctx, "SELECT name FROM items ORDER BY id")
			if err != nil {
				bDone <- []string{err.Error()}
				return
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				got = []string{err.Error()}
			}
			bDone <- got
		}()
		select {
		case got := <-bDone:
			t.Fatalf("B ran while A's transaction held the only connection: %v", got)
		case <-time.After(200 * time.Millisecond):
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if got := <-bDone; !slices.Equal(got, []string{"b1", "b2", "b3"}) {
			t.Fatalf("B sees %v", got)
		}
		if got := names(t, a); !slices.Equal(got, []string{"a1*", "a2", "a3"}) {
			t.Fatalf("A sees %v", got)
		}

		// A rolled-back transaction leaves nothing behind for the next tenant.
		tx, err = b.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustExecTx(t, tx, "DELETE FROM items")
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if tenantOf(t, a) != tenantA || tenantOf(t, b) != tenantB {
			t.Fatal("tenant setting crossed")
		}
		want := []string{"acme:a1*", "acme:a2", "acme:a3", "globex:b1", "globex:b2", "globex:b3"}
		if got := env.allRows(); !slices.Equal(got, want) {
			t.Fatalf("rows = %v", got)
		}
	})
}

// forgeCancel sends a CancelRequest with a key of the caller's choosing.
func forgeCancel(t *testing.T, addr string, pid, secret uint32) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := binary.BigEndian.AppendUint32(nil, 16)
	msg = binary.BigEndian.AppendUint32(msg, codeCancel)
	msg = binary.BigEndian.AppendUint32(msg, pid)
	msg = binary.BigEndian.AppendUint32(msg, secret)
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = conn.Read(make([]byte, 1)) // the proxy closes when done
}

func mustExecTx(t *testing.T, tx pgx.Tx, sql string) {
	t.Helper()
	if _, err := tx.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// RESET ALL and DISCARD ALL are allowed (drivers run them when returning a
// connection to their pool) and the client stays scoped afterwards.
func TestResetKeepsTenant(t *testing.T) {
	for _, mode := range []string{"transaction", "session"} {
		t.Run(mode, func(t *testing.T) {
			env := newPGEnv(t, func(o *Options) { o.PoolSize = 1; o.SessionPooling = mode == "session" })
			// DISCARD ALL drops named statements, pgx's statement cache
			// included, as it does on PostgreSQL: use unnamed ones.
			a := env.clientMode(tenantA, pgx.QueryExecModeCacheDescribe)
			mustExec(t, a, "INSERT INTO items (id, name) VALUES (1, 'mine')")
			for _, reset := range []string{"RESET ALL", "DISCARD ALL", "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL",
				"RESET app.tenant_id", `RESET "App".Tenant_Id`} {
				mustExec(t, a, reset)
				if got := tenantOf(t, a); got != tenantA {
					t.Fatalf("after %s the tenant is %q", reset, got)
				}
				if got := names(t, a); !slices.Equal(got, []string{"mine"}) {
					t.Fatalf("after %s A sees %v", reset, got)
				}
			}
			// A reset inside a transaction that then fails and rolls back.
			for _, end := range []string{"ROLLBACK", "ROLLBACK TO SAVEPOINT s; COMMIT"} {
				mustExec(t, a, "BEGIN")
				mustExec(t, a, "SAVEPOINT s")
				mustExec(t, a, "RESET ALL")
				_, err := a.Exec(context.Background(), "SET app.tenant_id = 'globex'")
				assertRefused(t, err, RuleTenantSetting)
				mustExec(t, a, end)
				if got := tenantOf(t, a); got != tenantA {
					t.Fatalf("after a failed transaction with RESET ALL and %s: tenant %q", end, got)
				}
			}

			// Through the extended protocol too, pipelined or not.
			pc := a.PgConn()
			for _, reset := range []string{"RESET ALL", "DISCARD ALL", "RESET app.tenant_id"} {
				if _, err := pc.ExecParams(context.Background(), reset, nil, nil, nil, nil).Close(); err != nil {
					t.Fatalf("%s: %v", reset, err)
				}
				res := pc.ExecParams(context.Background(), "SELECT current_setting('app.tenant_id', true)", nil, nil, nil, nil).Read()
				if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != tenantA {
					t.Fatalf("after extended %s: %v %q", reset, res.Err, res.Rows)
				}
			}
			batch := &pgconn.Batch{}
			batch.ExecParams("RESET ALL", nil, nil, nil, nil)
			batch.ExecParams("SELECT current_setting('app.tenant_id', true)", nil, nil, nil, nil)
			batch.ExecParams("RESET app.tenant_id", nil, nil, nil, nil)
			batch.ExecParams("SELECT current_setting('app.tenant_id', true)", nil, nil, nil, nil)
			results, err := pc.ExecBatch(context.Background(), batch).ReadAll()
			if err != nil || len(results) != 4 || len(results[1].Rows) != 1 || string(results[1].Rows[0][0]) != tenantA ||
				len(results[3].Rows) != 1 || string(results[3].Rows[0][0]) != tenantA {
				t.Fatalf("pipelined reset: %v %v", err, results)
			}
			// Statements after a reset in the same query string would run
			// before the proxy can apply the tenant again.
			_, err = a.Exec(context.Background(), "RESET ALL; SELECT 1")
			assertRefused(t, err, RuleResetPosition)
		})
	}
}

// A client's session-level SET pins it to its server connection: the
// setting stays with it and never reaches another tenant.
func TestSessionSetPins(t *testing.T) {
	env := newPGEnv(t, poolOf(2))
	a, b := env.client(tenantA), env.client(tenantB)
	mustExec(t, a, "SET statement_timeout = '12s'")
	var got string
	for range 3 {
		if err := a.QueryRow(context.Background(), "SHOW statement_timeout").Scan(&got); err != nil || got != "12s" {
			t.Fatalf("A's statement_timeout = %q, %v", got, err)
		}
		if err := b.QueryRow(context.Background(), "SHOW statement_timeout").Scan(&got); err != nil || got == "12s" {
			t.Fatalf("B's statement_timeout = %q, %v", got, err)
		}
	}
}

// A pinned client's session state is discarded when it leaves: the next
// tenant on its server connection starts clean.
func TestPinnedStateDiscardedOnExit(t *testing.T) {
	env := newPGEnv(t, poolOf(1))
	a := env.client(tenantA)
	mustExec(t, a, "SET statement_timeout = '12s'")
	mustExec(t, a, "PREPARE mine AS SELECT 1")
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := env.client(tenantB)
	var timeout string
	if err := b.QueryRow(context.Background(), "SELECT current_setting('statement_timeout')").Scan(&timeout); err != nil {
		t.Fatal(err)
	}
	_, executeErr := b.Exec(context.Background(), "EXECUTE mine", pgx.QueryExecModeSimpleProtocol)
	if timeout == "12s" || executeErr == nil || tenantOf(t, b) != tenantB {
		t.Fatalf("B inherited A's session: statement_timeout %s, EXECUTE of A's statement: %v", timeout, executeErr)
	}
}

// Startup parameters follow the client onto every server connection.
func TestStartupParametersFollowClient(t *testing.T) {
	env := newPGEnv(t, poolOf(1))
	cfg, err := pgx.ParseConfig(env.url(tenantA))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = "billing"
	cfg.RuntimeParams["timezone"] = "Asia/Tokyo"
	a, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	b := env.client(tenantB)
	for range 2 {
		var app, tz string
		if err := a.QueryRow(context.Background(), "SELECT current_setting('application_name'), current_setting('TimeZone')").Scan(&app, &tz); err != nil {
			t.Fatal(err)
		}
		if app != "billing" || tz != "Asia/Tokyo" {
			t.Fatalf("A has application_name %q, TimeZone %q", app, tz)
		}
		if err := b.QueryRow(context.Background(), "SELECT current_setting('application_name'), current_setting('TimeZone')").Scan(&app, &tz); err != nil {
			t.Fatal(err)
		}
		if app == "billing" || tz == "Asia/Tokyo" {
			t.Fatalf("B got A's parameters: %q, %q", app, tz)
		}
	}
}

// An exhausted pool makes clients wait, then fail with a clear error.
func TestPoolTimeout(t *testing.T) {
	eachServingMode(t, func(t *testing.T, mode func(*Options)) {
		env := newPGEnv(t, withMode(func(o *Options) { o.PoolSize = 1; o.PoolTimeout = 300 * time.Millisecond }, mode))
		a, b := env.client(tenantA), env.client(tenantB)
		tx, err := a.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background())
		mustExecTx(t, tx, "SELECT 1")
		_, err = b.Exec(context.Background(), "SELECT 1")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "53300" || !strings.Contains(pe.Message, "pool_size") {
			t.Fatalf("err = %v, want 53300 naming pool_size", err)
		}
	})
}

// A cancel request cancels the sender's statement, and only that.
func TestCancel(t *testing.T) {
	eachServingMode(t, func(t *testing.T, mode func(*Options)) {
		env := newPGEnv(t, withMode(poolOf(2), mode))
		a, b := env.client(tenantA), env.client(tenantB)
		go func() {
			time.Sleep(300 * time.Millisecond)
			_ = a.PgConn().CancelRequest(context.Background())
		}()
		start := time.Now()
		_, err := a.Exec(context.Background(), "SELECT pg_sleep(5)")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("err = %v, want query_canceled", err)
		}
		if time.Since(start) > 3*time.Second {
			t.Fatal("cancel took too long")
		}
		// Another key (B's is private to the proxy) cancels nothing.
		done := make(chan error, 1)
		go func() { _, err := b.Exec(context.Background(), "SELECT pg_sleep(0.5)"); done <- err }()
		time.Sleep(100 * time.Millisecond)
		forgeCancel(t, env.addr, b.PgConn().PID()+1, 12345)
		forgeCancel(t, env.addr, b.PgConn().PID(), 12345)
		if err := <-done; err != nil {
			t.Fatalf("B's statement: %v", err)
		}
		if tenantOf(t, a) != tenantA {
			t.Fatal("A lost its tenant after the cancel")
		}
	})
}

// Server connections keep a bounded number of client statements.
func TestServerStatementsBounded(t *testing.T) {
	env := newPGEnv(t, poolOf(1))
	a := env.client(tenantA)
	ctx := context.Background()
	for i := range maxServerStatements + 40 {
		var got int
		if err := a.QueryRow(ctx, fmt.Sprintf("SELECT $1::int + %d", i), 1).Scan(&got); err != nil || got != i+1 {
			t.Fatalf("statement %d: %d, %v", i, got, err)
		}
	}
	// The first ones were evicted on the server and are prepared again.
	var got, n int
	if err := a.QueryRow(ctx, "SELECT $1::int + 0", 5).Scan(&got); err != nil || got != 5 {
		t.Fatalf("evicted statement: %d, %v", got, err)
	}
	// The proxy's record of the server connection's statements stays within
	// the bound, and it is true: had the first statements not been
	// deallocated on the server, preparing one again above would have failed
	// with "already exists". (pg_prepared_statements itself is refused: it
	// shows other tenants' statements.)
	waitForIdle(t, env.engine.pool, 1)
	env.engine.pool.mu.Lock()
	c := env.engine.pool.idle[0]
	env.engine.pool.mu.Unlock()
	c.mu.Lock()
	n = len(c.prepared)
	c.mu.Unlock()
	if n > maxServerStatements+len(proxyStatements)+1 {
		t.Fatalf("%d statements prepared on the server connection", n)
	}
}

// When the server ends its connections, a client in a transaction gets a
// clear error; idle clients and the pool carry on with new connections.
func TestUpstreamLoss(t *testing.T) {
	eachServingMode(t, func(t *testing.T, mode func(*Options)) {
		env := newPGEnv(t, withMode(poolOf(2), mode))
		ctx := context.Background()
		a, b := env.client(tenantA), env.client(tenantB)
		mustExec(t, b, "SELECT 1")
		tx, err := a.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustExecTx(t, tx, "SELECT 1")
		mustExec(t, env.admin(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
		_, err = tx.Exec(ctx, "SELECT 1")
		if err == nil || !strings.Contains(err.Error(), "connection to the database server was lost") && !strings.Contains(err.Error(), "terminat") {
			t.Fatalf("in a transaction: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
		if got := tenantOf(t, b); got != tenantB {
			t.Fatalf("after reconnecting B has tenant %q", got)
		}
		c := env.client(tenantA)
		if got := tenantOf(t, c); got != tenantA {
			t.Fatalf("new client has tenant %q", got)
		}
		// The lost connection's slot is free again: two transactions at once
		// fit the pool of two.
		txB, err := b.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustExecTx(t, txB, "SELECT 1")
		txC, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustExecTx(t, txC, "SELECT 1")
		if err := txC.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := txB.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// min_idle connections are opened ahead of use; idle connections the server
// ended are found by the health check and replaced.
func TestPoolMaintenance(t *testing.T) {
	env := newPGEnv(t, func(o *Options) { o.PoolSize = 3; o.MinIdle = 2; o.HealthInterval = 100 * time.Millisecond })
	backends := func() int {
		var n int
		if err := env.admin().QueryRow(context.Background(),
			"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename <> current_user").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	testutil.WaitFor(t, "min_idle connections", func() bool { return backends() == 2 })
	mustExec(t, env.admin(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND usename <> current_user")
	testutil.WaitFor(t, "replacement connections", func() bool { return backends() == 2 })
	a := env.client(tenantA)
	if got := tenantOf(t, a); got != tenantA {
		t.Fatalf("tenant %q", got)
	}
}

// waitForIdle waits until pool holds n idle server connections.
func waitForIdle(t *testing.T, pool *Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if pool.yield != nil {
			pool.yield() // the event loop gives the connections it keeps back
		}
		pool.mu.Lock()
		idle := len(pool.idle)
		pool.mu.Unlock()
		if idle == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool has %d idle connections, want %d", idle, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
