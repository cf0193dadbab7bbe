package pg

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenantgate/tenantgate/proxy"
)

// Errors of the event loop's non-blocking path (loop_linux.go): the message
// runs again once a server connection is free, once the statements that
// apply the tenant have been answered, or in the session's goroutine.
var (
	errNoServer = errors.New("no server connection is free")
	errApplying = errors.New("the tenant is being applied")
	// errDial: no connection is idle but the pool may open one, which the
	// session's goroutine does.
	errDial = errors.New("a server connection must be dialled")
)

// maxClientStatements bounds the statements one client keeps prepared (the
// proxy holds their text to prepare them on other server connections).
const maxClientStatements = 10000

// clientStmt is a statement the client prepared. Named statements live on
// server connections under a name derived from their text and parameter
// types, so every client preparing the same statement shares it and a client
// can be given any server connection: the statement is prepared there first
// when missing.
type clientStmt struct {
	serverName string // "" for the unnamed statement
	parse      []byte // the Parse message that prepares it on a server connection
	verdict    *Verdict
}

// clientSession is one client connection after authentication: it reads the
// client's messages, guards them and writes them to the server connection it
// holds (in transaction pooling, only from the first message of a
// transaction to its end).
type clientSession struct {
	e      *Engine
	s      *proxy.Session
	rd     *msgReader
	tenant string
	// signature is the tenant's HMAC in hardened mode, made once per
	// session (TenantSigner).
	signature string
	params    map[string]string // startup parameters, applied on every server connection
	paramsKey string            // paramsKey(params)
	req       *proxy.RequestMetrics
	// started is when the message being handled arrived.
	started time.Time

	wmu  sync.Mutex
	w    *bufio.Writer
	werr error

	server atomic.Pointer[ServerConn]
	out    []byte // bytes for the server, written once the client's input pauses
	// scratch holds a rewritten message until push copies it into out.
	scratch []byte

	stmts   map[string]*clientStmt
	portals map[string]*Verdict // portals whose statement has effects
	// skipping: an error was answered without a server connection; the
	// client's messages are ignored up to its Sync, as PostgreSQL does.
	skipping bool

	// checked is the verdict of the Query message being handled, when the
	// event loop looked it up already (admitInLoop).
	checked *Verdict
	// lc is the client's socket while the engine's event loop serves the
	// session (loop_linux.go); noLoop: it cannot (TLS, or the loop failed).
	lc     *loopClient
	noLoop bool

	// Read by the server connection's reader under its lock.
	transactionPooling bool
	pinned             bool // holds its server connection until the end
	unsynced           bool // extended-protocol messages sent since the last Sync
	closing            bool
}

// write sends b to the client. Errors end the session at its next read.
func (c *clientSession) write(b []byte, flush bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return
	}
	if _, err := c.w.Write(b); err != nil {
		c.werr = err
		return
	}
	if flush {
		c.werr = c.w.Flush()
	}
}

func (c *clientSession) writeErr() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.werr
}

// detached is called by the server connection, under its lock, when it goes
// back to the pool.
func (c *clientSession) detached(srv *ServerConn) { c.server.CompareAndSwap(srv, nil) }

// upstreamLost ends the session when its server connection fails: what the
// server session held (transaction, prepared state) is gone. The session
// keeps the connection until it ends, which closes it and frees its slot.
func (c *clientSession) upstreamLost(err error) {
	c.write(fatal("08006", "tenantgate: the connection to the database server was lost: "+err.Error()).encode(nil), true)
	c.s.Close(err)
}

// serve runs the message loop until the client leaves.
func (c *clientSession) serve() error {
	defer c.end()
	defer c.s.OnDrain(c.interruptIfIdle)()
	for {
		if c.loopable() {
			if err := c.serveInLoop(); err != nil {
				return err
			}
		}
		typ, frame, body, err := c.rd.next()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && c.draining() {
				return proxy.ErrShuttingDown
			}
			return err
		}
		if err := c.writeErr(); err != nil {
			return err
		}
		c.started = time.Now()
		if typ == 'X' {
			return nil
		}
		if err := c.handle(typ, frame, body); err != nil {
			var pe *pgError
			if errors.As(err, &pe) {
				c.write(pe.encode(nil), true)
			}
			return err
		}
		// A pipeline still arriving is batched into one write to the
		// server; once the client waits, its answers are read here.
		if !c.rd.buffered() || len(c.out) >= syncLimit {
			if err := c.flushServer(); err != nil {
				return err
			}
		}
		if !c.rd.buffered() {
			if err := c.awaitAnswers(); err != nil {
				return err
			}
			c.write(nil, true)
		}
		select {
		case <-c.s.Draining():
			if c.server.Load() == nil {
				return proxy.ErrShuttingDown
			}
		default:
		}
	}
}

// interruptIfIdle stops the wait for the client's next message when the
// proxy starts draining and the session holds no server connection: it then
// ends at once (57P01) instead of when the client next sends something. A
// session in a transaction ends when the transaction does (serve).
func (c *clientSession) interruptIfIdle() {
	if c.server.Load() == nil {
		_ = c.s.Conn().SetReadDeadline(time.Now())
	}
}

func (c *clientSession) draining() bool {
	select {
	case <-c.s.Draining():
		return true
	default:
		return false
	}
}

func (c *clientSession) handle(typ byte, frame, body []byte) error {
	if c.skipping && typ != 'S' {
		return nil
	}
	switch typ {
	case 'Q':
		return c.query(frame, body)
	case 'P':
		return c.parse(body)
	case 'B':
		return c.bind(frame, body)
	case 'D':
		return c.describe(frame, body)
	case 'E':
		return c.execute(frame, body)
	case 'C':
		return c.closeMsg(frame, body)
	case 'S':
		return c.sync(frame)
	case 'H':
		return c.forwardIfAttached(frame, true)
	case 'd', 'c', 'f':
		return c.forwardIfAttached(frame, false)
	case 'F':
		return c.refuse(&Refusal{Rule: RuleFunctionCall, Code: "42501",
			Message: "the fast-path FunctionCall message can call any function; use a SQL statement"}, nil, true)
	}
	return fatal("08P01", "tenantgate: unexpected message type "+string(typ))
}

// attach returns the client's server connection, locked, taking one from
// the pool when it holds none, with the client's tenant and parameters
// applied (applyTenant). beforeQuery is set for a simple Query.
func (c *clientSession) attach(beforeQuery bool) (*ServerConn, error) {
	srv := c.server.Load()
	if srv != nil {
		srv.mu.Lock()
		if srv.owner != c {
			srv.mu.Unlock()
			srv = nil
		}
	}
	if srv == nil {
		var err error
		if c.lc != nil {
			srv, err = c.e.loop.take(c.lc)
		} else {
			srv, err = c.e.pool.Get(c.s.Context(), c.tenant)
		}
		if err != nil {
			if errors.Is(err, errNoServer) || errors.Is(err, errDial) {
				return nil, err
			}
			return nil, c.poolError(err, beforeQuery)
		}
		srv.mu.Lock()
		srv.owner = c
		c.server.Store(srv)
	}
	if err := c.applyTenant(srv, beforeQuery); err != nil {
		return nil, err
	}
	return srv, nil
}

// push queues p and appends msg for the server. srv is locked.
func (c *clientSession) push(srv *ServerConn, p pending, msg []byte) {
	if p.kind == 0 && len(srv.pending) == 0 {
		c.write(p.canned, false) // nothing before it is outstanding: answer now
		return
	}
	srv.pending = append(srv.pending, p)
	c.out = append(c.out, msg...)
}

// flushServer writes the messages queued for the server. A batch that
// would take the request bytes written ahead of reading past syncLimit is
// read by a relay goroutine concurrently.
func (c *clientSession) flushServer() error {
	srv := c.server.Load()
	if len(c.out) == 0 {
		return nil
	}
	out := c.out
	c.out = c.out[:0]
	if srv == nil {
		return errors.New("server connection lost with messages unsent")
	}
	srv.mu.Lock()
	if !srv.relaying && len(srv.pending) > 0 {
		if srv.unread += len(out); srv.unread > syncLimit {
			srv.startRelayLocked()
		}
	}
	srv.mu.Unlock()
	if _, err := srv.nc.Write(out); err != nil {
		srv.fail(err)
		return err
	}
	return nil
}

// awaitAnswers reads the server's answers to what was sent, in the
// session's goroutine, when they are sure to come: the last request is a
// Sync or a simple Query, after which the server sends everything and ends
// with ReadyForQuery. Otherwise (a Flush, or a pipeline the client has not
// synced) the server may hold answers back or skip requests after an error,
// and the client decides when it reads: a relay goroutine delivers what
// comes.
func (c *clientSession) awaitAnswers() error {
	srv := c.server.Load()
	if srv == nil {
		return nil
	}
	srv.mu.Lock()
	if srv.owner != c || srv.relaying || len(srv.pending) == 0 {
		srv.mu.Unlock()
		return nil
	}
	if !srv.endsWithSyncLocked() {
		srv.startRelayLocked()
		srv.mu.Unlock()
		return nil
	}
	srv.mu.Unlock()
	return srv.readAnswers()
}

func (c *clientSession) query(frame, body []byte) error {
	end := bytes.IndexByte(body, 0)
	if end < 0 {
		return fatal("08P01", "tenantgate: malformed Query message")
	}
	v := c.checked
	if c.checked = nil; v == nil {
		v = c.e.cache.CheckBytes(body[:end])
	}
	if v.Refusal != nil {
		if v.IfNotExists != nil {
			if done, err := c.answerIfExists(v.IfNotExists); done || err != nil {
				return err
			}
		}
		return c.refuse(v.Refusal, body[:len(body)-1], true)
	}
	if v.Deallocate != "" && c.deallocate(v.Deallocate) {
		return nil
	}
	srv, err := c.attach(true)
	if srv == nil {
		return err
	}
	c.push(srv, pending{kind: 'Q'}, frame)
	srv.unnamed = nil // a simple Query replaces the unnamed statement
	c.applyEffects(srv, v.Effects)
	srv.mu.Unlock()
	c.req.Forwarded(time.Since(c.started))
	return nil
}

// deallocate answers `DEALLOCATE name` for a statement the client prepared
// with the protocol: it lives on server connections under another name, so
// the proxy forgets it (the server's copy stays for others) and answers as
// the server would. It reports false, to forward the statement, when the
// name is not the client's or an answer now could not be put in order.
func (c *clientSession) deallocate(name string) bool {
	if _, ok := c.stmts[name]; !ok {
		return false
	}
	status := byte('I')
	if srv := c.server.Load(); srv != nil {
		srv.mu.Lock()
		owned, idle := srv.owner == c, len(srv.pending) == 0 && !c.unsynced
		status = srv.txStatus
		srv.mu.Unlock()
		if owned && !idle {
			return false
		}
		if status == 'E' {
			return false // the server answers: the transaction is aborted
		}
	}
	delete(c.stmts, name)
	c.write(append(appendMsg(nil, 'C', []byte("DEALLOCATE"), []byte{0}), readyForQuery(status)...), true)
	c.req.Forwarded(time.Since(c.started))
	return true
}

// applyEffects records what an allowed statement does to the server
// session. srv is locked.
func (c *clientSession) applyEffects(srv *ServerConn, e Effect) {
	if e&EffectPin != 0 {
		c.pinned = true
	}
	if e&EffectReset != 0 {
		srv.tenant = ""
		srv.applied, srv.appliedKey = map[string]string{}, "" // every parameter is at its default: applied again
	}
	if e&EffectDeallocate != 0 {
		// The client's named statements are gone too, as in PostgreSQL.
		for name := range c.stmts {
			if name != "" {
				delete(c.stmts, name)
			}
		}
		srv.prepared = map[string]bool{}
		srv.lastUse = map[string]uint64{}
		srv.unnamed = nil
	}
}

// end gives the client's server connection back when the session ends.
func (c *clientSession) end() {
	srv := c.server.Load()
	if srv == nil {
		return
	}
	srv.mu.Lock()
	if srv.owner != c {
		srv.mu.Unlock()
		return
	}
	c.closing = true
	srv.owner = nil
	c.server.Store(nil)
	// Requests in flight, or a pipeline never synced (the server may be in
	// an implicit transaction or skipping to a Sync): its state is unknown.
	inFlight := len(srv.pending) > 0 || srv.cancelling > 0 || c.unsynced || srv.broken != nil
	dirty := c.pinned || !c.transactionPooling || srv.txStatus != 'I'
	srv.mu.Unlock()
	if inFlight {
		c.e.pool.discard(srv)
		return
	}
	c.e.pool.putDirty(srv, dirty)
}
