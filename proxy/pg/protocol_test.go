package pg

import (
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// rawClient speaks the protocol message by message, to test orderings that
// drivers produce only under particular timing.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	fe   *pgproto3.Frontend
}

func (e *pgEnv) raw(tenant string) *rawClient {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = conn.Close() })
	c := &rawClient{t: e.t, conn: conn, fe: pgproto3.NewFrontend(conn, conn)}
	c.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": "app", "database": e.database}})
	c.expect("AuthenticationCleartextPassword")
	c.send(&pgproto3.PasswordMessage{Password: e.token(tenant)})
	for {
		if _, ok := c.receive().(*pgproto3.ReadyForQuery); ok {
			return c
		}
	}
}

func (c *rawClient) send(msgs ...pgproto3.FrontendMessage) {
	c.t.Helper()
	for _, m := range msgs {
		c.fe.Send(m)
	}
	if err := c.fe.Flush(); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) receive() pgproto3.BackendMessage {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	m, err := c.fe.Receive()
	if err != nil {
		c.t.Fatalf("receive: %v", err)
	}
	return m
}

// expect reads one message per name and checks its type.
func (c *rawClient) expect(names ...string) {
	c.t.Helper()
	for _, name := range names {
		m := c.receive()
		if got := reflect.TypeOf(m).Elem().Name(); got != name {
			c.t.Fatalf("got %s %+v, want %s", got, m, name)
		}
	}
}

// A pipeline whose first message fails, with the rest sent only after the
// error arrived: the server skips the rest, and so must the proxy's
// bookkeeping.
func TestErrorThenRestOfPipeline(t *testing.T) {
	eachServingMode(t, func(t *testing.T, mode func(*Options)) {
		env := newPGEnv(t, withMode(poolOf(1), mode))
		c := env.raw(tenantA)
		c.send(&pgproto3.Parse{Query: "SELECT * FROM missing_table"}, &pgproto3.Flush{})
		c.expect("ErrorResponse")
		c.send(&pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Close{ObjectType: 'S', Name: "x"}, &pgproto3.Sync{})
		c.expect("ReadyForQuery")
		c.send(&pgproto3.Query{String: "SELECT current_setting('app.tenant_id')"})
		c.expect("RowDescription", "DataRow", "CommandComplete", "ReadyForQuery")

		// Canned answers (CloseComplete, ParseComplete of a statement the server
		// already has) come in order with the server's.
		c.send(&pgproto3.Parse{Name: "s", Query: "SELECT 1"}, &pgproto3.Sync{})
		c.expect("ParseComplete", "ReadyForQuery")
		c.send(&pgproto3.Bind{PreparedStatement: "s"}, &pgproto3.Execute{}, &pgproto3.Close{ObjectType: 'S', Name: "s"},
			&pgproto3.Parse{Name: "s", Query: "SELECT 1"}, &pgproto3.Bind{PreparedStatement: "s"}, &pgproto3.Execute{}, &pgproto3.Sync{})
		c.expect("BindComplete", "DataRow", "CommandComplete", "CloseComplete", "ParseComplete", "BindComplete", "DataRow", "CommandComplete", "ReadyForQuery")

		// DEALLOCATE of a protocol-prepared statement, and DEALLOCATE ALL,
		// drop the client's statements as PostgreSQL does.
		c.send(&pgproto3.Parse{Name: "d1", Query: "SELECT 1"}, &pgproto3.Parse{Name: "d2", Query: "SELECT 2"}, &pgproto3.Sync{})
		c.expect("ParseComplete", "ParseComplete", "ReadyForQuery")
		c.send(&pgproto3.Query{String: "DEALLOCATE d1"})
		c.expect("CommandComplete", "ReadyForQuery")
		c.send(&pgproto3.Parse{Name: "d1", Query: "SELECT 1"}, &pgproto3.Sync{})
		c.expect("ParseComplete", "ReadyForQuery")
		c.send(&pgproto3.Query{String: "DEALLOCATE ALL"})
		c.expect("CommandComplete", "ReadyForQuery")
		c.send(&pgproto3.Parse{Name: "d2", Query: "SELECT 2"}, &pgproto3.Bind{PreparedStatement: "d2"}, &pgproto3.Execute{}, &pgproto3.Sync{})
		c.expect("ParseComplete", "BindComplete", "DataRow", "CommandComplete", "ReadyForQuery")

		// Reserved names and the fast path are refused, and the session goes on.
		c.send(&pgproto3.Parse{Name: "tenantgate_set", Query: "SELECT 1"}, &pgproto3.Sync{})
		c.expect("ErrorResponse", "ReadyForQuery")
		c.send(&pgproto3.FunctionCall{Function: 1})
		c.expect("ErrorResponse", "ReadyForQuery")
		c.send(&pgproto3.Bind{PreparedStatement: "nope"}, &pgproto3.Sync{})
		c.expect("ErrorResponse", "ReadyForQuery")
		c.send(&pgproto3.Query{String: "SELECT 1"})
		c.expect("RowDescription", "DataRow", "CommandComplete", "ReadyForQuery")
	})
}

// A client that leaves in the middle of a pipeline (no Sync) or of a
// transaction leaves nothing behind: its writes are not committed and the
// next client gets a clean connection.
func TestClientLeavesMidway(t *testing.T) {
	eachServingMode(t, func(t *testing.T, mode func(*Options)) {
		env := newPGEnv(t, withMode(poolOf(1), mode))
		c := env.raw(tenantA)
		c.send(&pgproto3.Parse{Query: "INSERT INTO items (id, name) VALUES (1, 'unsynced')"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Flush{})
		c.expect("ParseComplete", "BindComplete", "CommandComplete")
		_ = c.conn.Close()

		d := env.raw(tenantA)
		d.send(&pgproto3.Query{String: "BEGIN; INSERT INTO items (id, name) VALUES (2, 'open tx')"})
		d.expect("CommandComplete", "CommandComplete", "ReadyForQuery")
		_ = d.conn.Close()

		b := env.client(tenantB)
		if got := tenantOf(t, b); got != tenantB {
			t.Fatalf("B has tenant %q", got)
		}
		time.Sleep(100 * time.Millisecond)
		if got := env.allRows(); len(got) != 0 {
			t.Fatalf("rows of clients that left: %v", got)
		}
	})
}

// Row-limited Execute (PortalSuspended) and COPY through the extended and
// simple protocols pass through, in order, with other clients in between.
func TestPortalsAndCopy(t *testing.T) {
	eachServingMode(t, func(t *testing.T, mode func(*Options)) {
		env := newPGEnv(t, withMode(poolOf(1), mode))
		admin := env.admin()
		mustExec(t, admin, "CREATE TABLE shared_log (line text)")
		mustExec(t, admin, "GRANT SELECT, INSERT ON shared_log TO "+proxyRole(t, env))
		a := env.client(tenantA)
		for i := range 3 {
			mustExec(t, a, "INSERT INTO items (id, name) VALUES ($1, 'row')", i)
		}

		c := env.raw(tenantA)
		c.send(&pgproto3.Query{String: "BEGIN"})
		c.expect("CommandComplete", "ReadyForQuery")
		c.send(&pgproto3.Parse{Query: "SELECT id FROM items ORDER BY id"}, &pgproto3.Bind{DestinationPortal: "cur"},
			&pgproto3.Execute{Portal: "cur", MaxRows: 2}, &pgproto3.Sync{})
		c.expect("ParseComplete", "BindComplete", "DataRow", "DataRow", "PortalSuspended", "ReadyForQuery")
		c.send(&pgproto3.Execute{Portal: "cur", MaxRows: 2}, &pgproto3.Sync{})
		c.expect("DataRow", "CommandComplete", "ReadyForQuery")
		c.send(&pgproto3.Query{String: "COMMIT"})
		c.expect("CommandComplete", "ReadyForQuery")

		c.send(&pgproto3.Query{String: "COPY shared_log FROM STDIN"})
		c.expect("CopyInResponse")
		c.send(&pgproto3.CopyData{Data: []byte("one\ntwo\n")}, &pgproto3.CopyDone{})
		c.expect("CommandComplete", "ReadyForQuery")
		c.send(&pgproto3.Parse{Query: "COPY (SELECT line FROM shared_log ORDER BY line) TO STDOUT"}, &pgproto3.Bind{},
			&pgproto3.Execute{}, &pgproto3.Sync{})
		c.expect("ParseComplete", "BindComplete", "CopyOutResponse", "CopyData", "CopyData", "CopyDone", "CommandComplete", "ReadyForQuery")
		if got := names(t, env.client(tenantB)); len(got) != 0 {
			t.Fatalf("B sees %v", got)
		}
	})
}
