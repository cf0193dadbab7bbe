package pg

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// BenchmarkProxySelect measures a single-statement transaction through the
// proxy to the test PostgreSQL from 8 concurrent clients (like
// `pgbench -S -M simple -c 8`): a simple Query whose literal changes every
// time, so each one goes through the guard's masked cache, and its answer.
// The clients speak raw protocol, so that a CPU profile shows the proxy;
// both serving modes run. An op is one transaction.
//
//	go test -run '^$' -bench ProxySelect -cpuprofile cpu.out ./proxy/pg/
func BenchmarkProxySelect(b *testing.B) {
	b.Run("event loop", func(b *testing.B) { benchTransactions(b, selectScript, func(*Options) {}) })
	b.Run("goroutines", func(b *testing.B) { benchTransactions(b, selectScript, func(o *Options) { o.NoEventLoop = true }) })
}

// BenchmarkProxyRLS is BenchmarkProxySelect with bench/pg.sh's rls
// transaction: BEGIN, a SELECT and an UPDATE by key, END, each its own
// simple Query, so the server connection stays with the client across four
// round trips. An op is one transaction.
func BenchmarkProxyRLS(b *testing.B) {
	b.Run("event loop", func(b *testing.B) { benchTransactions(b, rlsScript, func(*Options) {}) })
	b.Run("goroutines", func(b *testing.B) { benchTransactions(b, rlsScript, func(o *Options) { o.NoEventLoop = true }) })
}

// A transactionScript appends the statements of transaction i to dst.
type transactionScript func(dst []string, i int) []string

func selectScript(dst []string, i int) []string {
	return append(dst, "SELECT name FROM items WHERE id = "+strconv.Itoa(i%1000+1))
}

func rlsScript(dst []string, i int) []string {
	id := strconv.Itoa(i%1000 + 1)
	return append(dst,
		"BEGIN",
		"SELECT name FROM items WHERE id = "+id,
		"UPDATE items SET name = 'm"+strconv.Itoa(i%7)+"' WHERE id = "+id,
		"END")
}

func benchTransactions(b *testing.B, script transactionScript, configure func(*Options)) {
	const clients = 8
	e := newPGEnv(b, func(o *Options) {
		o.PoolSize = clients
		configure(o)
	})
	admin := e.admin()
	mustExec(b, admin, "INSERT INTO items (tenant_id, id, name) SELECT 'acme', g, 'n' || g FROM generate_series(1, 1000) g")
	conns := make(chan *rawClient, clients)
	for range clients {
		c := e.raw(tenantA)
		_ = c.conn.SetReadDeadline(time.Time{}) // raw's startup left one
		conns <- c
	}
	b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c := <-conns
		var statements []string
		for i := 0; pb.Next(); i++ {
			statements = script(statements[:0], i)
			for _, sql := range statements {
				c.fe.Send(&pgproto3.Query{String: sql})
				if err := c.fe.Flush(); err != nil {
					b.Error(err)
					return
				}
				if err := awaitReady(c.fe); err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tx/s")
}

// awaitReady reads answers up to ReadyForQuery; an ErrorResponse is an
// error.
func awaitReady(fe *pgproto3.Frontend) error {
	for {
		msg, err := fe.Receive()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("%s: %s", m.Code, m.Message)
		case *pgproto3.ReadyForQuery:
			return nil
		}
	}
}
