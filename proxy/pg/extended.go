package pg

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// serverStmtName is the server-side name of a named statement: a digest of
// its text and parameter types, so equal statements share one name.
func serverStmtName(query string, oids []uint32) string {
	h := sha256.New()
	h.Write([]byte(query))
	var b [4]byte
	for _, o := range oids {
		binary.BigEndian.PutUint32(b[:], o)
		h.Write(b[:])
	}
	return reservedPrefix + hex.EncodeToString(h.Sum(nil)[:12])
}

func hasReservedPrefix(name string) bool {
	return strings.HasPrefix(strings.ToLower(name), reservedPrefix)
}

func reservedNameRefusal() *Refusal {
	return &Refusal{Rule: RuleReservedName, Code: "42501",
		Message: "statement and portal names starting with \"" + reservedPrefix + "\" are reserved for the proxy"}
}

// prepareOn makes st exist on srv, preparing it first (answer swallowed)
// when srv lacks it. srv is locked.
func (c *clientSession) prepareOn(srv *ServerConn, st *clientStmt) {
	if st.serverName == "" {
		if srv.unnamed == st {
			return
		}
		srv.unnamed = st
	} else {
		if _, ok := srv.prepared[st.serverName]; ok {
			srv.touch(st.serverName)
			return
		}
		c.makeRoom(srv)
		srv.prepared[st.serverName] = false
		srv.touch(st.serverName)
	}
	c.push(srv, pending{kind: 'P', swallow: true, parseName: st.serverName}, st.parse)
}

// maxServerStatements bounds the client statements prepared on one server
// connection; the least recently used is closed to make room.
const maxServerStatements = 256

// makeRoom closes the least recently used client statement on srv when it
// holds maxServerStatements. srv is locked.
func (c *clientSession) makeRoom(srv *ServerConn) {
	if len(srv.lastUse) < maxServerStatements {
		return
	}
	var oldest string
	var at uint64
	for name, used := range srv.lastUse {
		if oldest == "" || used < at {
			oldest, at = name, used
		}
	}
	delete(srv.lastUse, oldest)
	delete(srv.prepared, oldest)
	c.push(srv, pending{kind: 'C', swallow: true}, encodeMsg(nil, &pgproto3.Close{ObjectType: 'S', Name: oldest}))
}

// withStatementName appends to dst the message typ whose body is body with
// the statement name at offset off (a NUL-terminated string of oldLen
// bytes) replaced by name.
func withStatementName(dst []byte, typ byte, body []byte, off int, oldLen int, name string) []byte {
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint32(dst, uint32(4+len(body)-oldLen+len(name)))
	dst = append(dst, body[:off]...)
	dst = append(dst, name...)
	return append(dst, body[off+oldLen:]...)
}

// decodeBind returns the portal and statement names of a Bind body; the
// rest (parameters, formats) is relayed untouched.
func decodeBind(body []byte) (portal, stmt string, ok bool) {
	portal, rest, ok := cstring(body)
	if !ok {
		return "", "", false
	}
	stmt, _, ok = cstring(rest)
	return portal, stmt, ok
}

func (c *clientSession) bind(frame, body []byte) error {
	portal, stmtName, ok := decodeBind(body)
	if !ok {
		return fatal("08P01", "tenantgate: malformed Bind message")
	}
	if hasReservedPrefix(portal) {
		return c.refuse(reservedNameRefusal(), nil, false)
	}
	st := c.stmts[stmtName]
	if st == nil {
		return c.fail(errorf("26000", "prepared statement \""+stmtName+"\" does not exist"), false)
	}
	srv, err := c.attach(false)
	if srv == nil {
		return err
	}
	defer srv.mu.Unlock()
	c.unsynced = true
	c.prepareOn(srv, st)
	msg := frame
	if st.serverName != stmtName {
		c.scratch = withStatementName(c.scratch[:0], 'B', body, len(portal)+1, len(stmtName), st.serverName)
		msg = c.scratch
	}
	c.push(srv, pending{kind: 'B'}, msg)
	if st.verdict.Effects != 0 {
		c.portals[portal] = st.verdict
	} else {
		delete(c.portals, portal)
	}
	return nil
}

func (c *clientSession) describe(frame, body []byte) error {
	if len(body) < 2 {
		return fatal("08P01", "tenantgate: malformed Describe message")
	}
	name, _, ok := cstring(body[1:])
	if !ok {
		return fatal("08P01", "tenantgate: malformed Describe message")
	}
	msg := frame
	var st *clientStmt
	if body[0] == 'S' {
		if st = c.stmts[name]; st == nil {
			return c.fail(errorf("26000", "prepared statement \""+name+"\" does not exist"), false)
		}
		if st.serverName != name {
			c.scratch = withStatementName(c.scratch[:0], 'D', body, 1, len(name), st.serverName)
			msg = c.scratch
		}
	}
	srv, err := c.attach(false)
	if srv == nil {
		return err
	}
	defer srv.mu.Unlock()
	c.unsynced = true
	if st != nil {
		c.prepareOn(srv, st)
	}
	c.push(srv, pending{kind: 'D'}, msg)
	return nil
}

func (c *clientSession) execute(frame, body []byte) error {
	portal, _, ok := cstring(body)
	if !ok {
		return fatal("08P01", "tenantgate: malformed Execute message")
	}
	srv, err := c.attach(false)
	if srv == nil {
		return err
	}
	defer srv.mu.Unlock()
	c.unsynced = true
	c.push(srv, pending{kind: 'E'}, frame)
	if v := c.portals[portal]; v != nil {
		c.applyEffects(srv, v.Effects)
	}
	c.req.Forwarded(time.Since(c.started))
	return nil
}

func (c *clientSession) closeMsg(frame, body []byte) error {
	var m pgproto3.Close
	if err := m.Decode(body); err != nil {
		return fatal("08P01", "tenantgate: malformed Close message")
	}
	if m.ObjectType == 'S' {
		// The server keeps its copy for whoever prepares the same text.
		delete(c.stmts, m.Name)
		return c.answer(msgCloseComplete)
	}
	delete(c.portals, m.Name)
	srv := c.server.Load()
	if srv == nil {
		return c.answer(msgCloseComplete)
	}
	srv, err := c.attach(false)
	if srv == nil {
		return err
	}
	defer srv.mu.Unlock()
	c.unsynced = true
	c.push(srv, pending{kind: 'C'}, frame)
	return nil
}

// answer queues a canned answer in order with what is outstanding, or sends
// it at once when the client holds no server connection.
func (c *clientSession) answer(msg []byte) error {
	if srv := c.server.Load(); srv != nil {
		srv.mu.Lock()
		if srv.owner == c {
			c.push(srv, pending{canned: msg}, nil)
			srv.mu.Unlock()
			return nil
		}
		srv.mu.Unlock()
	}
	c.write(msg, false)
	return nil
}

func (c *clientSession) sync(frame []byte) error {
	if c.skipping {
		c.skipping = false
		c.write(readyForQuery('I'), true)
		return nil
	}
	srv := c.server.Load()
	if srv != nil {
		srv.mu.Lock()
		if srv.owner == c {
			c.push(srv, pending{kind: 'S'}, frame)
			c.unsynced = false
			srv.mu.Unlock()
			return nil
		}
		srv.mu.Unlock()
	}
	c.write(readyForQuery('I'), true)
	return nil
}

// forwardIfAttached relays Flush and COPY data to the held server
// connection. COPY messages outside a COPY are ignored by PostgreSQL, and
// without a server connection there is no COPY to feed.
func (c *clientSession) forwardIfAttached(frame []byte, flush bool) error {
	srv := c.server.Load()
	if srv == nil {
		return nil
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.owner != c || !flush && len(srv.pending) == 0 {
		return nil
	}
	if flush {
		c.unsynced = true
	}
	c.out = append(c.out, frame...)
	return nil
}

func (c *clientSession) parse(body []byte) error {
	var p pgproto3.Parse
	if err := p.Decode(body); err != nil {
		return fatal("08P01", "tenantgate: malformed Parse message")
	}
	if hasReservedPrefix(p.Name) {
		return c.refuse(reservedNameRefusal(), nil, false)
	}
	v := c.e.cache.Check(p.Query)
	if v.Refusal != nil {
		return c.refuse(v.Refusal, []byte(p.Query), false)
	}
	if _, exists := c.stmts[p.Name]; exists && p.Name != "" {
		return c.fail(errorf("42P05", "prepared statement \""+p.Name+"\" already exists"), false)
	}
	if len(c.stmts) >= maxClientStatements {
		return c.fail(errorf("53400", fmt.Sprintf("tenantgate: more than %d prepared statements in one session; close some", maxClientStatements)), false)
	}
	clientName := p.Name
	st := &clientStmt{verdict: v}
	if clientName != "" {
		st.serverName = serverStmtName(p.Query, p.ParameterOIDs)
	}
	p.Name = st.serverName
	st.parse = encodeMsg(nil, &p)
	if st.serverName != "" && c.server.Load() == nil && c.e.pool.known.has(st.serverName) {
		// Outside a transaction, a statement some connection prepared
		// before needs none now: it is prepared where the client binds it.
		// So a Parse never waits for a pool slot behind other clients'
		// transactions; an error it would now raise (a dropped table, another
		// search_path) comes with that Bind.
		c.stmts[clientName] = st
		return c.answer(msgParseComplete)
	}
	srv, err := c.attach(false)
	if srv == nil {
		return err // before the statement is recorded: the event loop may run this Parse again
	}
	defer srv.mu.Unlock()
	c.stmts[clientName] = st
	c.unsynced = true
	if st.serverName != "" {
		if _, ok := srv.prepared[st.serverName]; ok {
			srv.touch(st.serverName)
			c.push(srv, pending{canned: msgParseComplete}, nil)
			return nil
		}
		c.makeRoom(srv)
		srv.prepared[st.serverName] = false
		srv.touch(st.serverName)
	} else {
		srv.unnamed = st
	}
	c.push(srv, pending{kind: 'P', parseName: st.serverName}, st.parse)
	return nil
}
