package pg

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Batches whose answers are far larger than the socket buffers are read
// concurrently while they are written, so the proxy never blocks writing to
// a server that is blocked writing to it: a pipeline without a Sync, and a
// query with a large answer followed by a query text larger than syncLimit
// in one write (together larger than the socket buffers). Every answer arrives in order, and the connection then
// serves another tenant with that tenant's setting.
func TestLargePipelineLargeAnswers(t *testing.T) {
	eachServingMode(t, func(t *testing.T, mode func(*Options)) {
		env := newPGEnv(t, withMode(poolOf(1), mode))
		c := env.raw(tenantA)
		const n = 2000
		var batch []byte
		batch = encodeMsg(batch, &pgproto3.Parse{Query: "SELECT repeat('x', 8000), current_setting('app.tenant_id')"})
		for range n {
			batch = encodeMsg(batch, &pgproto3.Bind{})
			batch = encodeMsg(batch, &pgproto3.Execute{})
		}
		batch = encodeMsg(batch, &pgproto3.Sync{})
		written := make(chan error, 1)
		go func() { _, err := c.conn.Write(batch); written <- err }()
		c.expect("ParseComplete")
		for i := range n {
			c.expect("BindComplete")
			row, ok := c.receive().(*pgproto3.DataRow)
			if !ok || len(row.Values) != 2 || len(row.Values[0]) != 8000 || string(row.Values[1]) != tenantA {
				t.Fatalf("answer %d: %+v", i, row)
			}
			c.expect("CommandComplete")
		}
		c.expect("ReadyForQuery")
		if err := <-written; err != nil {
			t.Fatal(err)
		}

		long := "SELECT length('" + strings.Repeat("y", 24<<20) + "')"
		batch = encodeMsg(nil, &pgproto3.Query{String: "SELECT repeat('x', 16 << 20)"})
		batch = encodeMsg(batch, &pgproto3.Query{String: long})
		go func() { _, err := c.conn.Write(batch); written <- err }()
		c.expect("RowDescription")
		if row, ok := c.receive().(*pgproto3.DataRow); !ok || len(row.Values[0]) != 16<<20 {
			t.Fatal("large answer missing")
		}
		c.expect("CommandComplete", "ReadyForQuery", "RowDescription", "DataRow", "CommandComplete", "ReadyForQuery")
		if err := <-written; err != nil {
			t.Fatal(err)
		}

		if got := tenantOf(t, env.client(tenantB)); got != tenantB {
			t.Fatalf("next client has tenant %q", got)
		}
		c.send(&pgproto3.Query{String: "SELECT current_setting('app.tenant_id')"})
		c.expect("RowDescription")
		if row, ok := c.receive().(*pgproto3.DataRow); !ok || string(row.Values[0]) != tenantA {
			t.Fatalf("A after B: %+v", row)
		}
		c.expect("CommandComplete", "ReadyForQuery")
	})
}

// Two tenants each pipeline several simple queries and a transaction in one
// write over a pool of one connection: the connection changes hands only
// between whole batches, and every answer carries the sender's tenant.
func TestPipelinedQueriesTwoTenantsOneConnection(t *testing.T) {
	eachServingMode(t, func(t *testing.T, mode func(*Options)) {
		env := newPGEnv(t, withMode(poolOf(1), mode))
		clients := map[string]*rawClient{tenantA: env.raw(tenantA), tenantB: env.raw(tenantB)}
		const show = "SELECT current_setting('app.tenant_id')"
		done := make(chan string, len(clients))
		for tenant, c := range clients {
			go func() {
				var batch []byte
				for range 50 {
					for _, q := range []string{show, "BEGIN", show, "COMMIT", show} {
						batch = encodeMsg(batch, &pgproto3.Query{String: q})
					}
				}
				if _, err := c.conn.Write(batch); err != nil {
					done <- err.Error()
					return
				}
				_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				for i := 0; i < 50*5; {
					m, err := c.fe.Receive()
					if err != nil {
						done <- err.Error()
						return
					}
					switch m := m.(type) {
					case *pgproto3.DataRow:
						if got := string(m.Values[0]); got != tenant {
							done <- tenant + " saw " + got
							return
						}
					case *pgproto3.ErrorResponse:
						done <- m.Message
						return
					case *pgproto3.ReadyForQuery:
						i++
					}
				}
				done <- ""
			}()
		}
		var failures []string
		for range clients {
			if msg := <-done; msg != "" {
				failures = append(failures, msg)
			}
		}
		if len(failures) > 0 {
			t.Fatal(strings.Join(failures, "; "))
		}
	})
}

// An idle connection with no reader is handed out only when the server has
// neither closed it nor sent anything since its last answer.
func TestIdleHealthy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pair := func() (*ServerConn, net.Conn) {
		t.Helper()
		nc, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		peer, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close(); _ = peer.Close() })
		return newServerConn(nc, 1, nil, func(*ServerConn) {}, newPreparedSet()), peer
	}
	eventually := func(srv *ServerConn, want bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for srv.idleHealthy() != want {
			if time.Now().After(deadline) {
				t.Fatalf("idleHealthy stays %v", !want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	quiet, _ := pair()
	if !quiet.idleHealthy() {
		t.Fatal("a quiet connection is unhealthy")
	}
	if !quiet.idleHealthy() {
		t.Fatal("the check consumed something")
	}
	talking, peer := pair()
	if _, err := peer.Write(readyForQuery('I')); err != nil {
		t.Fatal(err)
	}
	eventually(talking, false)
	closed, peer := pair()
	_ = peer.Close()
	eventually(closed, false)
}

// Outside a transaction, a Parse of a statement some server connection
// prepared before is answered without taking a connection: with the only one
// held by another tenant's transaction it does not wait, and the statement
// is prepared where the client later runs it, with the client's tenant. A
// statement never prepared still goes to the server, so its errors come with
// the Parse.
func TestParseWithoutConnection(t *testing.T) {
	env := newPGEnv(t, poolOf(1))
	const q = "SELECT current_setting('app.tenant_id')"
	first := env.raw(tenantB)
	first.send(&pgproto3.Parse{Name: "s", Query: q}, &pgproto3.Sync{})
	first.expect("ParseComplete", "ReadyForQuery")
	bad := env.raw(tenantB)
	bad.send(&pgproto3.Parse{Name: "bad", Query: "SELECT * FROM no_such_table"}, &pgproto3.Sync{})
	bad.expect("ErrorResponse", "ReadyForQuery")

	a := env.raw(tenantA)
	a.send(&pgproto3.Query{String: "BEGIN"})
	a.expect("CommandComplete", "ReadyForQuery") // A holds the only connection
	b := env.raw(tenantB)
	start := time.Now()
	b.send(&pgproto3.Parse{Name: "mine", Query: q}, &pgproto3.Sync{})
	b.expect("ParseComplete", "ReadyForQuery")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the Parse waited %s for a connection", d)
	}
	a.send(&pgproto3.Query{String: "COMMIT"})
	a.expect("CommandComplete", "ReadyForQuery")

	b.send(&pgproto3.Bind{PreparedStatement: "mine"}, &pgproto3.Execute{}, &pgproto3.Sync{})
	b.expect("BindComplete")
	if row, ok := b.receive().(*pgproto3.DataRow); !ok || string(row.Values[0]) != tenantB {
		t.Fatalf("B's statement ran with %+v", row)
	}
	b.expect("CommandComplete", "ReadyForQuery")
}
