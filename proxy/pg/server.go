package pg

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ServerConn is one upstream connection, owned by the proxy. Whoever reads
// the server hands each message to the client that owns the connection at
// that moment, consulting the queue of what was sent to know which messages
// to pass, swallow (answers to what the proxy injected) or replace
// (refusals).
//
// Reading is done by one goroutine at a time and only while answers are
// outstanding. In the ordinary request/response case (the client's batch
// ends with a Sync or a simple Query) the owner's session goroutine reads
// the answers itself (readAnswers): no other goroutine is woken per round
// trip. What needs concurrency, COPY FROM STDIN, batches without a Sync
// (the client decides when to read) and batches larger than syncLimit
// (writing to a server that is blocked writing to us would deadlock), gets a
// relay goroutine that reads until nothing is outstanding and then ends.
// An idle connection has no reader: Pool.Get checks that it holds no
// unexpected input and was not closed (idleHealthy).
//
// Only the owner's session goroutine writes to the server; the proxy's own
// maintenance statements run only while no client owns the connection.
type ServerConn struct {
	nc      net.Conn
	rd      *msgReader
	peek    *idlePeek // nil where the socket cannot be peeked at
	pid     uint32
	secret  []byte
	created time.Time

	mu       sync.Mutex
	owner    *clientSession
	pending  []pending
	txStatus byte
	broken   error
	// cancelling counts cancel requests in flight for the owner: the
	// connection is not handed to another client until they are delivered.
	cancelling int
	onRelease  func(*ServerConn) // the pool's put, called after the owner lets go
	known      *preparedSet      // statements prepared successfully on any connection
	relaying   bool              // a relay goroutine is reading the server
	// unread counts the request bytes written, while no relay runs, since
	// the server last had nothing outstanding.
	unread int
	// loop is the event loop that serves the socket (nc is then a
	// loopConn), nil while the Go runtime does. It changes only while no
	// client owns the connection.
	loop *eventLoop

	// What the server session holds, as far as the proxy knows.
	tenant  string            // tenant setting's value; "" = unknown
	applied map[string]string // client parameters applied (TimeZone, ...)
	// appliedKey is the paramsKey of the client whose parameters applied
	// holds exactly; "" = not known to be any client's.
	appliedKey string
	prepared   map[string]bool   // server statement name -> ParseComplete seen
	lastUse    map[string]uint64 // client statements (not the proxy's): last use, for eviction
	uses       uint64
	unnamed    *clientStmt // the statement in the unnamed slot
}

// pending is one message sent to the server (or a canned answer queued in
// order), and what to do with the server's answers to it.
type pending struct {
	kind      byte // the frontend message type: P B D E C S Q; 0 for a canned answer
	canned    []byte
	swallow   bool     // the proxy's own message: its answers are not relayed (errors are)
	refusal   *pgError // replaces the server's error to this message
	parseName string   // server statement name confirmed by ParseComplete
	failStale bool     // on error or skip, the tenant must be applied again
	done      chan error
	failed    error
}

func newServerConn(nc net.Conn, pid uint32, secret []byte, onRelease func(*ServerConn), known *preparedSet) *ServerConn {
	c := &ServerConn{
		nc: nc, rd: newMsgReader(nc, 1<<30), peek: newIdlePeek(nc), pid: pid, secret: secret, created: time.Now(),
		txStatus: 'I', onRelease: onRelease, known: known,
	}
	c.forgetLocked()
	return c
}

// syncLimit bounds the request bytes written to the server ahead of reading
// its answers in the writing goroutine. Below it the kernel's socket buffers
// take the whole batch even while the server is blocked writing answers
// nobody reads yet; above it a relay goroutine reads concurrently.
const syncLimit = 16 << 10

// completes reports whether a backend message of type t ends the answer to
// a frontend message of kind k.
func completes(k, t byte) bool {
	switch k {
	case 'P':
		return t == '1'
	case 'B':
		return t == '2'
	case 'C':
		return t == '3'
	case 'D':
		return t == 'T' || t == 'n'
	case 'E':
		return t == 'C' || t == 'I' || t == 's'
	case 'S', 'Q':
		return t == 'Z'
	}
	return false
}

// readAnswers reads and handles the server's messages in the calling
// goroutine until nothing is outstanding. The caller must be the only
// reader: the owner's session goroutine while no relay runs, or exec on an
// idle connection. When the server starts waiting for COPY data from the
// client, a relay goroutine takes over and readAnswers returns.
func (c *ServerConn) readAnswers() error {
	for {
		typ, frame, body, err := c.rd.next()
		if err != nil {
			err = fmt.Errorf("upstream connection lost: %w", err)
			c.fail(err)
			return err
		}
		if !c.handle(typ, frame, body, false) {
			return nil
		}
	}
}

// relay reads the server until nothing is outstanding or the connection
// fails.
func (c *ServerConn) relay() {
	for {
		typ, frame, body, err := c.rd.next()
		if err != nil {
			c.fail(fmt.Errorf("upstream connection lost: %w", err))
			return
		}
		if !c.handle(typ, frame, body, true) {
			return
		}
	}
}

// endsWithSyncLocked reports whether the last request outstanding (canned
// answers aside) is a Sync or a simple Query: every answer up to it is
// then sure to come. c is locked.
func (c *ServerConn) endsWithSyncLocked() bool {
	for i := len(c.pending) - 1; i >= 0; i-- {
		if k := c.pending[i].kind; k != 0 {
			return k == 'S' || k == 'Q'
		}
	}
	return false
}

// startRelayLocked hands reading to a relay goroutine. Only with answers
// outstanding: the relay ends when none are, and an idle connection must
// have no reader. c is locked.
func (c *ServerConn) startRelayLocked() {
	if c.relaying || len(c.pending) == 0 {
		return
	}
	c.relaying = true
	go c.relay()
}

// handle processes one server message and reports whether its reader should
// read on: answers are outstanding and no other reader took over. relay is
// set when the caller is the relay goroutine.
func (c *ServerConn) handle(typ byte, frame, body []byte, relay bool) bool {
	c.mu.Lock()
	owner := c.owner
	var out []byte
	flush := !c.rd.buffered()
	switch typ {
	case 'S':
		// Parameter changes, the proxy's own included: the client then knows
		// the values its statements run with.
		out = frame
	case 'N':
		if len(c.pending) == 0 || !c.pending[0].swallow {
			out = frame
		}
	case 'A':
		// Notifications cannot happen (LISTEN is refused); never relay one.
	default:
		if typ == 'Z' {
			// ReadyForQuery answers only a Sync or a Query: requests ahead
			// of it were sent after an error and skipped by the server.
			for len(c.pending) > 0 && c.pending[0].kind != 'S' && c.pending[0].kind != 'Q' {
				c.failed(&c.pending[0])
				c.pop()
			}
		}
		if len(c.pending) == 0 {
			if typ == 'E' || typ == 'Z' {
				c.broken = fmt.Errorf("upstream sent %q outside any request", typ)
			}
			out = frame // nothing was asked: pass it on (a FATAL before close)
			break
		}
		head := &c.pending[0] // valid until pop
		switch {
		case typ == 'E' && head.refusal != nil:
			out = head.refusal.encode(nil)
		case typ == 'E' || !head.swallow:
			out = frame
		}
		if typ == 'E' {
			c.onError(head)
		} else if completes(head.kind, typ) {
			if typ == 'Z' && len(body) == 1 {
				c.txStatus = body[0]
			}
			if typ == '1' && head.parseName != "" {
				c.prepared[head.parseName] = true
				c.known.add(head.parseName)
			}
			c.pop()
		}
	}
	out = append(out, c.cannedLocked()...)
	// Written under the lock: a canned answer the session queues next must
	// not overtake this one.
	// Flush whenever the server has nothing more buffered, even after a
	// swallowed message: earlier answers may be waiting in the buffer.
	if owner != nil && (len(out) > 0 || flush) {
		owner.write(out, flush || typ == 'Z')
	}
	more := len(c.pending) > 0
	switch {
	case !more:
		c.unread = 0
		c.relaying = false
	case !relay && (typ == 'G' || typ == 'W'):
		more = false
		if c.loop != nil {
			// The event loop hands a session back before a COPY FROM
			// STDIN (EffectCopyIn); this one was not announced.
			c.broken = errors.New("the server waits for COPY data the event loop does not relay")
			break
		}
		// The server waits for COPY data the session goroutine must read
		// from the client.
		c.startRelayLocked()
	}
	release := typ == 'Z' && c.detachLocked()
	loop := c.loop
	c.mu.Unlock()
	if release {
		c.released(loop)
	}
	return more
}

// released gives the connection, which its owner let go, back to the pool;
// through its event loop when it has one (handle runs on the loop's
// goroutine for such a connection).
func (c *ServerConn) released(loop *eventLoop) {
	if loop != nil {
		loop.release(c)
		return
	}
	c.onRelease(c)
}

// onError handles an ErrorResponse for the head request: in the extended
// protocol the server skips everything up to the next Sync, so those
// requests get no answers.
func (c *ServerConn) onError(head *pending) {
	if head.kind == 'Q' || head.kind == 'S' {
		head.failed = errors.New("statement failed")
		return // the query goes on to its ReadyForQuery
	}
	c.failed(head)
	c.pop()
	for len(c.pending) > 0 && c.pending[0].kind != 'S' && c.pending[0].kind != 'Q' {
		c.failed(&c.pending[0])
		c.pop()
	}
}

func (c *ServerConn) failed(p *pending) {
	if p.parseName != "" && !c.prepared[p.parseName] {
		delete(c.prepared, p.parseName)
		delete(c.lastUse, p.parseName)
	}
	if p.failStale {
		c.tenant = ""
	}
	if p.kind == 'P' && p.parseName == "" && c.unnamed != nil {
		c.unnamed = nil
	}
	p.failed = errors.New("skipped after an error")
}

func (c *ServerConn) pop() {
	p := c.pending[0]
	c.pending[0] = pending{}
	if len(c.pending) == 1 {
		c.pending = c.pending[:0] // keeps the capacity for the next requests
	} else {
		c.pending = c.pending[1:]
	}
	if p.done != nil {
		p.done <- p.failed
	}
}

// cannedLocked takes the canned answers now at the head of the queue.
func (c *ServerConn) cannedLocked() []byte {
	var out []byte
	for len(c.pending) > 0 && c.pending[0].kind == 0 {
		out = append(out, c.pending[0].canned...)
		c.pop()
	}
	return out
}

// releasableLocked reports whether the owner can let the connection go back
// to the pool now: transaction pooling, nothing in flight, no transaction.
func (c *ServerConn) releasableLocked() bool {
	o := c.owner
	return o != nil && len(c.pending) == 0 && c.txStatus == 'I' && c.cancelling == 0 && c.broken == nil &&
		o.transactionPooling && !o.pinned && !o.unsynced && !o.closing
}

// detachLocked lets the owner go when releasable and reports whether it did.
func (c *ServerConn) detachLocked() bool {
	if !c.releasableLocked() {
		return false
	}
	c.owner.detached(c)
	c.owner = nil
	return true
}

// maybeRelease gives the connection back to the pool if its owner is done
// with it (after a cancel request that held it).
func (c *ServerConn) maybeRelease() {
	c.mu.Lock()
	if loop := c.loop; loop != nil && loop.post(loopRequest{kind: reqRelease, srv: c}) {
		c.mu.Unlock() // the loop's goroutine releases it
		return
	}
	release := c.detachLocked()
	c.mu.Unlock()
	if release {
		c.onRelease(c)
	}
}

// fail marks the connection broken; its owner's session ends with a clear
// error, since what its server session held is lost.
func (c *ServerConn) fail(err error) {
	_ = c.nc.Close()
	c.mu.Lock()
	if c.broken == nil {
		c.broken = err
	}
	owner := c.owner
	for len(c.pending) > 0 {
		c.pending[0].failed = err
		c.pop()
	}
	c.mu.Unlock()
	if owner != nil {
		owner.upstreamLost(err)
	}
}

// servedTenant is the tenant the server session holds, "" when unknown.
func (c *ServerConn) servedTenant() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tenant
}

// isBroken reports whether the connection can no longer be used.
func (c *ServerConn) isBroken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken != nil
}

// exec runs a simple query for the proxy itself while no client owns the
// connection, swallowing its answers, and reads them.
func (c *ServerConn) exec(sql string, timeout time.Duration) error {
	done := make(chan error, 1) // the statement's outcome, once answered
	c.mu.Lock()
	if c.owner != nil || len(c.pending) > 0 || c.broken != nil {
		c.mu.Unlock()
		return errors.New("server connection not idle")
	}
	c.pending = append(c.pending, pending{kind: 'Q', swallow: true, done: done})
	c.unnamed = nil // a simple Query replaces the unnamed statement
	c.mu.Unlock()
	msg := appendMsg(nil, 'Q', []byte(sql), []byte{0})
	_ = c.nc.SetDeadline(time.Now().Add(timeout))
	_, err := c.nc.Write(msg)
	if err != nil {
		c.fail(err)
	} else {
		err = c.readAnswers() // fails the connection on error
	}
	_ = c.nc.SetDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("%q: %w", sql, err)
	}
	return <-done
}

// reset returns the server session to a clean state for the next client: a
// transaction left open is rolled back; session state is discarded when
// dirty. What the proxy knew of the session is forgotten with it.
func (c *ServerConn) reset(dirty bool, timeout time.Duration) error {
	c.mu.Lock()
	status := c.txStatus
	c.mu.Unlock()
	if status != 'I' {
		if err := c.exec("ROLLBACK", timeout); err != nil {
			return err
		}
	}
	if !dirty {
		return nil
	}
	if err := c.exec("DISCARD ALL", timeout); err != nil {
		return err
	}
	c.mu.Lock()
	c.forgetLocked()
	c.mu.Unlock()
	return nil
}

// forgetLocked drops what the proxy knew of the server session's state.
func (c *ServerConn) forgetLocked() {
	c.tenant = ""
	c.applied, c.appliedKey = map[string]string{}, ""
	c.prepared = map[string]bool{}
	c.lastUse = map[string]uint64{}
	c.unnamed = nil
}

// touch records a use of a client statement. c is locked.
func (c *ServerConn) touch(name string) {
	c.uses++
	c.lastUse[name] = c.uses
}

func (c *ServerConn) close() { _ = c.nc.Close() }
