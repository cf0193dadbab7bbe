package pg

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Names of what the proxy prepares on server connections.
const (
	stmtSetConfig  = reservedPrefix + "set"
	stmtResetParam = reservedPrefix + "reset"
	stmtDiscardSeq = reservedPrefix + "discard_seq"
	portalProxy    = reservedPrefix + "p"
	portalRefused  = reservedPrefix + "refused" // never exists: executing it fails in order
)

// proxyStatements are schema-qualified: a client's search_path must not be
// able to put its own set_config in front of PostgreSQL's.
var proxyStatements = map[string]string{
	stmtSetConfig:  "SELECT pg_catalog.set_config($1, $2, false)",
	stmtResetParam: "SELECT pg_catalog.set_config(name, reset_val, false) FROM pg_catalog.pg_settings WHERE pg_catalog.lower(name) OPERATOR(pg_catalog.=) $1",
	stmtDiscardSeq: "DISCARD SEQUENCES",
}

// ensure makes the server session hold the client's tenant and parameters
// before anything of the client's runs on it. Everything is sent as
// parameterised extended-protocol statements the proxy prepares under its
// own names; their answers are swallowed, their errors reach the client and
// make the server skip the client's messages up to its next Sync, so nothing
// runs without the tenant. srv is locked.
func (c *clientSession) ensure(srv *ServerConn) bool {
	injected := false
	if srv.tenant != c.tenant {
		// Sequence state (currval, lastval) would tell the next tenant
		// about the previous one's rows.
		c.inject(srv, stmtDiscardSeq)
		c.inject(srv, stmtSetConfig, c.e.opts.TenantSetting, c.tenant)
		if signer := c.e.opts.Signer; signer != nil {
			c.inject(srv, stmtSetConfig, signer.Setting(), c.signature)
		}
		srv.tenant = c.tenant
		injected = true
	}
	if srv.appliedKey == c.paramsKey {
		return injected // the parameters last applied are the client's
	}
	for name, value := range c.params {
		if srv.applied[name] != value {
			c.inject(srv, stmtSetConfig, name, value)
			srv.applied[name] = value
			injected = true
		}
	}
	for name := range srv.applied {
		if _, ok := c.params[name]; !ok {
			c.inject(srv, stmtResetParam, name)
			delete(srv.applied, name)
			injected = true
		}
	}
	srv.appliedKey = c.paramsKey
	return injected
}

// paramsKey is a text that equals another's exactly when the two sets of
// startup parameters do; never "" (which marks a server connection's
// parameters as unknown).
func paramsKey(params map[string]string) string {
	names := slices.Sorted(maps.Keys(params))
	var b strings.Builder
	b.WriteByte('p')
	for _, name := range names {
		b.WriteString(strconv.Quote(name))
		b.WriteByte('=')
		b.WriteString(strconv.Quote(params[name]))
	}
	return b.String()
}

// inject runs one of the proxy's statements with params on srv.
func (c *clientSession) inject(srv *ServerConn, stmt string, params ...string) {
	if _, ok := srv.prepared[stmt]; !ok {
		oids := make([]uint32, len(params))
		for i := range oids {
			oids[i] = 25 // text
		}
		srv.prepared[stmt] = false
		c.push(srv, pending{kind: 'P', swallow: true, parseName: stmt, failStale: true},
			encodeMsg(nil, &pgproto3.Parse{Name: stmt, Query: proxyStatements[stmt], ParameterOIDs: oids}))
	}
	values := make([][]byte, len(params))
	for i, p := range params {
		values[i] = []byte(p)
	}
	var msg []byte
	msg = encodeMsg(msg, &pgproto3.Bind{DestinationPortal: portalProxy, PreparedStatement: stmt, Parameters: values})
	c.push(srv, pending{kind: 'B', swallow: true, failStale: true}, msg)
	c.push(srv, pending{kind: 'E', swallow: true, failStale: true}, encodeMsg(nil, &pgproto3.Execute{Portal: portalProxy}))
	c.push(srv, pending{kind: 'C', swallow: true}, encodeMsg(nil, &pgproto3.Close{ObjectType: 'P', Name: portalProxy}))
}

// applyTenant makes srv hold the client's tenant and parameters (ensure)
// before the client's next message. set_config is transactional: applied in
// the same implicit transaction as the client's statements, it would be
// rolled back with them when one fails, leaving the previous value in
// place. So at the start of a batch (and always before a simple Query, which
// the server does not skip after an extended-protocol error) the injected
// statements get their own Sync, and the client's message is sent only once
// they succeeded; failing to apply the tenant ends the session. In the
// middle of a batch (after a RESET in a pipeline) they join the client's
// transaction, whose rollback would also undo the RESET. srv is locked on
// entry and on a nil return.
//
// In a failed transaction nothing but transaction control runs, and
// set_config would fail too: the tenant is applied after it, once the
// rollback has restored (or not) the setting.
func (c *clientSession) applyTenant(srv *ServerConn, beforeQuery bool) error {
	if srv.txStatus == 'E' {
		return nil
	}
	atStart := beforeQuery || !c.unsynced
	if !c.ensure(srv) || !atStart {
		return nil
	}
	if c.lc != nil {
		// The event loop cannot wait here: it runs the message again once
		// the answers are in (loop_linux.go).
		c.push(srv, pending{kind: 'S', swallow: true}, []byte{'S', 0, 0, 0, 4})
		c.lc.applying, c.lc.applyHold = true, c.unsynced
		c.unsynced = true
		srv.mu.Unlock()
		return errApplying
	}
	done := make(chan error, 1)
	c.push(srv, pending{kind: 'S', swallow: true, done: done}, []byte{'S', 0, 0, 0, 4})
	hold := c.unsynced
	c.unsynced = true // keep the connection while waiting
	srv.mu.Unlock()
	if err := c.flushServer(); err != nil {
		return err
	}
	failed, err := c.awaitDone(srv, done)
	if err != nil {
		return err
	}
	srv.mu.Lock()
	c.unsynced = hold
	if srv.owner != c || srv.broken != nil || failed != nil || srv.tenant != c.tenant {
		srv.mu.Unlock()
		return fatal("08006", "tenantgate: could not apply the tenant on the server connection")
	}
	return nil
}

// awaitDone waits for the answer to the injected Sync whose result done
// carries: read here when no relay runs (everything outstanding ends with
// that Sync), delivered by the relay otherwise.
func (c *clientSession) awaitDone(srv *ServerConn, done chan error) (error, error) {
	srv.mu.Lock()
	relaying := srv.relaying
	srv.mu.Unlock()
	if !relaying {
		if err := srv.readAnswers(); err != nil {
			return nil, err
		}
		srv.mu.Lock()
		relaying = srv.relaying // the server may wait for COPY data queued before
		srv.mu.Unlock()
	}
	if relaying {
		return <-done, nil
	}
	select {
	case failed := <-done:
		return failed, nil
	default:
		return nil, fatal("08006", "tenantgate: could not apply the tenant on the server connection")
	}
}
