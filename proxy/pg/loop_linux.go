package pg

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tenantgate/tenantgate/proxy"
)

// Bounds on what the event loop buffers for one peer.
const (
	// maxClientBacklog is how many answer bytes a client may leave unread
	// before the loop stops reading its server connection.
	maxClientBacklog = 1 << 20
	// maxServerBacklog is how many request bytes a server connection may
	// leave unread before the loop stops reading its client.
	maxServerBacklog = 1 << 20
	// waiterPoll is how often the loop looks for a free pool slot while
	// clients wait for one (besides the pool's own reports).
	waiterPoll = 10 * time.Millisecond
)

// eventLoop serves, from one goroutine and one epoll instance, the sessions
// of transaction pooling: their client sockets and the server connections
// they hold during a transaction. One epoll_wait brings the messages of
// every client that sent some and the answers of every server connection
// that has them; no goroutine wakes per round trip, which is what a
// session's own goroutine costs otherwise (docs/performance.md). Sockets
// leave the Go runtime for the loop (proxy.DetachFD) and come back to it.
//
// The loop runs each message through the session's own code (handle, the
// guard, the statement bookkeeping, ServerConn.handle for answers), so a
// session behaves the same in and out of it. Where that code would wait,
// the loop waits for an event instead: a client that needs a server
// connection while none is free waits in a queue (up to pool_timeout); one
// whose connection needs the tenant applied waits for the server's answer
// and then runs its message again. Everything else that would wait or needs
// a goroutine (a COPY FROM STDIN, a pinned session, CREATE ... IF NOT EXISTS
// answered from the catalog, a new server connection to dial, Terminate)
// hands the session back to its goroutine, which goes on from that message
// as if it had read it itself; the session comes back to the loop once it
// holds no server connection again.
type eventLoop struct {
	e    *Engine
	p    *proxy.Poller[loopRequest]
	done chan struct{}
	// waiters is set while clients wait for a server connection: the pool
	// then reports every freed slot.
	waiters atomic.Bool

	// The loop goroutine's own state.
	clients proxy.FDTable[loopClient] // by descriptor
	servers proxy.FDTable[ServerConn] // registered server sockets, by descriptor
	// idleServers are server connections the loop keeps registered between
	// transactions, each holding its pool slot, so a transaction costs no
	// epoll_ctl and no health check: the loop sees at once what an idle
	// connection receives (a server ending the session). They go back to
	// the pool when a session goroutine waits for a slot (reqYield).
	idleServers []*ServerConn
	waiting     []*loopClient // for a server connection, oldest first
	ready       []*loopClient // to serve again: given a connection, or their tenant applied
	dirty       []*loopClient // to settle: flush, interest, handback
	// poolChanged: the loop took or kept idle server connections this
	// round; the pool's gauges are set once at its end.
	poolChanged bool
	now         time.Time     // when the round's wait returned
	idle        time.Duration // the sessions' idle timeout
	idleScan    time.Time
	events      []unix.EpollEvent
}

type loopRequestKind uint8

const (
	reqAdopt   loopRequestKind = iota // serve the client
	reqDrain                          // hand the client back once it holds no server connection
	reqDrop                           // the session was closed: close the socket now
	reqRelease                        // a delivered cancel request may free a server connection
	reqRetry                          // a pool slot was freed
	reqYield                          // a session goroutine waits for a pool slot
	reqStop                           // the engine is closing
)

type loopRequest struct {
	kind loopRequestKind
	lc   *loopClient
	srv  *ServerConn
}

// loopSocket is a socket the loop owns. It reads at most once per
// readiness event (armed), so the loop never pays for a read that finds
// nothing: epoll reports what is left.
type loopSocket struct {
	proxy.LoopSocket
	armed bool
}

func (s *loopSocket) Read(p []byte) (int, error) {
	if !s.armed {
		return 0, proxy.ErrWouldBlock
	}
	s.armed = false
	return s.LoopSocket.Read(p)
}

// loopClient is a session's client socket while the loop serves it: the
// source of the session's message reader and the sink of its writer.
type loopClient struct {
	loopSocket
	c    *clientSession
	back chan proxy.Handback // cap 1: the one handback

	// The loop goroutine's state.
	reading  bool // false once handed back
	draining bool
	dirty    bool
	// waitSince is when the client began waiting for a server connection
	// (zero: it does not); timedOut: it waited pool_timeout in vain.
	waitSince time.Time
	timedOut  bool
	// applying: the statements that apply the client's tenant are in
	// flight; the client's message runs again once they are answered.
	applying  bool
	applyHold bool // the session's unsynced flag before applying
	// stirred: the client's socket became readable while its messages were
	// held (waiting or applying). Its socket stays watched while they are
	// held, which spares two epoll_ctl per wait, until it stirs: a level-
	// triggered event for input the loop leaves unread would come back at
	// every epoll_wait.
	stirred  bool
	lastRead time.Time
}

// held reports whether the client's messages wait: for a server
// connection, or for its tenant to be applied.
func (lc *loopClient) held() bool { return lc.applying || !lc.waitSince.IsZero() }

// loopConn is a server connection's socket while the loop serves it. Only
// Read, Write and Close work: the proxy's own statements (exec) run on
// connections the Go runtime serves.
type loopConn struct {
	loopSocket
	closed bool
}

func (c *loopConn) Close() error {
	if !c.closed {
		c.closed = true
		return unix.Close(c.FD)
	}
	return nil
}

func (c *loopConn) LocalAddr() net.Addr              { return nil }
func (c *loopConn) RemoteAddr() net.Addr             { return nil }
func (c *loopConn) SetDeadline(time.Time) error      { return nil }
func (c *loopConn) SetReadDeadline(time.Time) error  { return nil }
func (c *loopConn) SetWriteDeadline(time.Time) error { return nil }

// newEventLoop starts the engine's event loop; nil when epoll is not
// available (the sessions are then served by their goroutines).
func newEventLoop(e *Engine) *eventLoop {
	p, err := proxy.NewPoller[loopRequest]()
	if err != nil {
		e.opts.Log.Warn("postgres event loop unavailable; sessions are served by their own goroutines", "err", err)
		return nil
	}
	l := &eventLoop{
		e: e, p: p, done: make(chan struct{}),
		events: make([]unix.EpollEvent, 256),
	}
	go l.run()
	return l
}

// post queues a request for the loop; false when the loop has stopped.
func (l *eventLoop) post(r loopRequest) bool { return l.p.Post(r, r.kind == reqStop) }

// close stops the loop; its clients go back to their goroutines.
func (l *eventLoop) close() {
	if l.post(loopRequest{kind: reqStop}) {
		<-l.done
	}
}

// poolFreed is the pool's report of a freed slot.
func (l *eventLoop) poolFreed() {
	if l.waiters.Load() {
		l.post(loopRequest{kind: reqRetry})
	}
}

// poolWanted is the pool's report of a session goroutine waiting for a
// slot.
func (l *eventLoop) poolWanted() {
	if l.e.pool.loopIdle.Load() > 0 {
		l.post(loopRequest{kind: reqYield})
	}
}

// yieldIdle gives the idle server connections the loop keeps back to the
// pool.
func (l *eventLoop) yieldIdle() {
	for _, srv := range l.idleServers {
		l.e.pool.loopIdle.Add(-1)
		l.unregister(srv)
		srv.onRelease(srv)
	}
	clear(l.idleServers)
	l.idleServers = l.idleServers[:0]
}

// keptServer takes an idle server connection the loop keeps, preferring one
// that last served tenant; nil when it keeps none.
func (l *eventLoop) keptServer(tenant string) *ServerConn {
	for len(l.idleServers) > 0 {
		i := preferTenant(l.idleServers, tenant)
		srv := l.idleServers[i]
		l.idleServers = slices.Delete(l.idleServers, i, i+1)
		l.e.pool.loopIdle.Add(-1)
		if srv.isBroken() || l.e.pool.expiredAt(srv, l.now) || srv.rd.buffered() {
			l.unregister(srv)
			l.e.pool.discard(srv)
			continue
		}
		l.poolChanged = true
		return srv
	}
	return nil
}

// acquire gives a server connection without waiting: a kept one, or one
// from the pool (slotFree then tells whether one may be dialled).
func (l *eventLoop) acquire(tenant string) (srv *ServerConn, slotFree bool) {
	if srv := l.keptServer(tenant); srv != nil {
		return srv, true
	}
	srv, slotFree = l.e.pool.tryGet(tenant)
	if srv == nil {
		return nil, slotFree
	}
	if err := l.register(srv); err != nil {
		l.e.opts.Log.Warn("postgres event loop: cannot serve a server connection", "err", err)
		l.e.pool.discard(srv)
		return nil, false
	}
	return srv, true
}

func (l *eventLoop) run() {
	defer close(l.done)
	for {
		timeout := -1
		switch {
		case len(l.ready) > 0:
			timeout = 0
		case len(l.waiting) > 0:
			timeout = int(waiterPoll / time.Millisecond)
		case l.idle > 0 && l.clients.Len() > 0:
			timeout = int(max(min(l.idle/4, time.Second), 10*time.Millisecond) / time.Millisecond)
		}
		n, err := l.p.Wait(l.events, timeout)
		if err != nil && !errors.Is(err, unix.EINTR) {
			l.e.opts.Log.Error("postgres event loop failed; its sessions go back to their goroutines", "err", err)
			l.stop()
			return
		}
		now := time.Now()
		l.now = now
		for _, ev := range l.events[:max(n, 0)] {
			fd := int(ev.Fd)
			if l.p.IsWake(fd) {
				if l.takeRequests(now) {
					return
				}
				continue
			}
			if srv := l.servers.Get(fd); srv != nil {
				l.serverEvent(srv, ev.Events)
				continue
			}
			if lc := l.clients.Get(fd); lc != nil {
				l.clientEvent(lc, ev.Events, now)
			}
		}
		ready := l.ready
		l.ready = nil
		for _, lc := range ready {
			l.serveClient(lc, now)
		}
		l.serveWaiters(now)
		l.settle()
		if l.poolChanged {
			l.poolChanged = false
			l.e.pool.report()
		}
		if l.idle > 0 && now.Sub(l.idleScan) >= l.idle/4 {
			l.idleScan = now
			l.closeIdle(now)
		}
	}
}

// takeRequests serves the inbox; it reports whether the loop stops.
func (l *eventLoop) takeRequests(now time.Time) (stop bool) {
	for _, r := range l.p.Take() {
		switch r.kind {
		case reqAdopt:
			l.adopt(r.lc, now)
		case reqDrain:
			if l.clients.Get(r.lc.FD) == r.lc {
				r.lc.draining = true
				l.markDirty(r.lc)
			}
		case reqDrop:
			if l.clients.Get(r.lc.FD) == r.lc {
				l.handBack(r.lc, proxy.ErrSessionClosed)
			}
		case reqRelease:
			l.releaseIfDone(r.srv)
		case reqRetry:
			// serveWaiters runs after the events
		case reqYield:
			l.yieldIdle()
		case reqStop:
			l.stop()
			return true
		}
	}
	return false
}

func (l *eventLoop) adopt(lc *loopClient, now time.Time) {
	lc.reading, lc.lastRead = true, now
	l.clients.Set(lc.FD, lc)
	if d := lc.c.s.IdleTimeout(); d > 0 {
		l.idle = d
	}
	l.markDirty(lc)
}

func (l *eventLoop) markDirty(lc *loopClient) {
	if !lc.dirty {
		lc.dirty = true
		l.dirty = append(l.dirty, lc)
	}
}

func (l *eventLoop) clientEvent(lc *loopClient, events uint32, now time.Time) {
	if lc.Backlog() > 0 && events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		lc.WriteBacklog()
	}
	if events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		if lc.held() {
			lc.stirred = true
		}
		lc.armed = true
		l.serveClient(lc, now)
		lc.armed = false
	}
	l.markDirty(lc)
}

// serveClient runs the client's messages that have arrived, until one must
// wait (for a server connection, for the tenant to be applied) or go back
// to the session's goroutine.
func (l *eventLoop) serveClient(lc *loopClient, now time.Time) {
	c := lc.c
	if !lc.reading || lc.held() {
		return
	}
	lc.stirred = false
	l.markDirty(lc)
	for {
		typ, frame, body, ok, err := c.rd.tryNext()
		if err != nil {
			l.handBack(lc, nil) // the session's goroutine meets the error again
			return
		}
		if !ok {
			return
		}
		lc.lastRead, c.started = now, now
		if !c.admitInLoop(typ, body) {
			c.rd.unread()
			l.handBack(lc, nil)
			return
		}
		switch err := c.handle(typ, frame, body); {
		case err == nil:
		case errors.Is(err, errNoServer):
			c.rd.unread()
			lc.waitSince = now
			l.waiting = append(l.waiting, lc)
			l.waiters.Store(true)
			return
		case errors.Is(err, errApplying):
			c.rd.unread()
			return
		case errors.Is(err, errDial):
			c.rd.unread()
			l.handBack(lc, nil)
			return
		default:
			var pe *pgError
			if errors.As(err, &pe) {
				c.write(pe.encode(nil), true)
			}
			l.handBack(lc, err)
			return
		}
	}
}

// admitInLoop reports whether the loop may run the message: false for
// what needs the session's goroutine.
func (c *clientSession) admitInLoop(typ byte, body []byte) bool {
	switch typ {
	case 'Q':
		end := len(body) - 1
		if end < 0 || body[end] != 0 {
			return false // malformed: the goroutine answers it
		}
		v := c.e.cache.CheckBytes(body[:end])
		c.checked = v // query uses it: one lookup per statement
		if v.Refusal != nil {
			return v.IfNotExists == nil // answered from the catalog, on a connection of its own
		}
		return v.Effects&(EffectPin|EffectCopyIn) == 0
	case 'E':
		portal, _, ok := cstring(body)
		if v := c.portals[portal]; ok && v != nil {
			return v.Effects&(EffectPin|EffectCopyIn) == 0
		}
		return ok
	case 'P', 'B', 'D', 'C', 'S', 'H', 'F', 'd', 'c', 'f':
		// COPY data outside a COPY: forwarded or dropped, and ignored by
		// the server, as PostgreSQL's protocol says.
		return true
	}
	return false // Terminate, and anything unknown
}

// take gives the client a server connection from the pool without
// waiting: errNoServer when none is free (or others wait for one first).
func (l *eventLoop) take(lc *loopClient) (*ServerConn, error) {
	if lc.timedOut {
		lc.timedOut = false
		return nil, fmt.Errorf("%w: all %d are busy after waiting %s (postgres.pool_size, postgres.pool_timeout)",
			errPoolTimeout, l.e.pool.opts.Size, l.e.pool.opts.WaitTimeout)
	}
	if len(l.waiting) > 0 && l.waiting[0] != lc {
		return nil, errNoServer
	}
	srv, slotFree := l.acquire(lc.c.tenant)
	if srv == nil {
		if slotFree {
			return nil, errDial
		}
		return nil, errNoServer
	}
	return srv, nil
}

// register makes the loop serve srv's socket.
func (l *eventLoop) register(srv *ServerConn) error {
	if srv.servedBy() == nil {
		if err := srv.toLoop(l); err != nil {
			return err
		}
	}
	lconn := srv.nc.(*loopConn)
	if err := l.p.Watch(&lconn.LoopSocket, unix.EPOLLIN); err != nil {
		return err
	}
	l.servers.Set(lconn.FD, srv)
	return nil
}

// unregister stops watching srv's socket; it stays the loop's (idle in the
// pool) until someone converts it back (toRuntime).
func (l *eventLoop) unregister(srv *ServerConn) {
	lconn, ok := srv.nc.(*loopConn)
	if !ok || l.servers.Get(lconn.FD) != srv {
		return
	}
	l.servers.Delete(lconn.FD)
	if lconn.closed {
		lconn.Events = 0 // closing the descriptor unregistered it
		return
	}
	_ = l.p.Watch(&lconn.LoopSocket, 0)
}

// release takes a server connection its owner let go of (ServerConn.handle
// or releaseIfDone, on the loop's goroutine): straight to the client that
// waited longest for one, or back to the pool.
func (l *eventLoop) release(srv *ServerConn) {
	if l.e.pool.expiredAt(srv, l.now) {
		l.unregister(srv)
		srv.onRelease(srv) // closes it
		return
	}
	if l.firstWaiter() != nil {
		lc := l.popWaiter()
		give(srv, lc.c)
		l.ready = append(l.ready, lc)
		return
	}
	if l.e.pool.slotWaiters.Load() == 0 {
		l.idleServers = append(l.idleServers, srv)
		l.e.pool.loopIdle.Add(1)
		l.poolChanged = true
		return
	}
	l.unregister(srv)
	srv.onRelease(srv)
}

// give makes c the owner of srv, which nobody owns.
func give(srv *ServerConn, c *clientSession) {
	srv.mu.Lock()
	srv.owner = c
	srv.mu.Unlock()
	c.server.Store(srv)
}

// releaseIfDone releases srv if its owner, a client of the loop, is done
// with it (after a cancel request held it).
func (l *eventLoop) releaseIfDone(srv *ServerConn) {
	srv.mu.Lock()
	owner := srv.owner
	release := srv.loop == l && srv.detachLocked()
	srv.mu.Unlock()
	if release {
		l.release(srv)
		if owner != nil && owner.lc != nil {
			l.markDirty(owner.lc)
		}
	}
}

// firstWaiter is the client that has waited longest for a server
// connection, nil when none waits; entries of clients that stopped waiting
// (handed back) are dropped on the way.
func (l *eventLoop) firstWaiter() *loopClient {
	for len(l.waiting) > 0 {
		if lc := l.waiting[0]; lc.reading && !lc.waitSince.IsZero() {
			return lc
		}
		l.popWaiter()
	}
	return nil
}

// popWaiter takes the first client off the queue: it waits no longer.
func (l *eventLoop) popWaiter() *loopClient {
	lc := l.waiting[0]
	l.waiting[0] = nil
	l.waiting = l.waiting[1:]
	lc.waitSince = time.Time{}
	l.waiters.Store(len(l.waiting) > 0)
	return lc
}

// serveWaiters gives free server connections to the clients waiting, in
// order, and answers those that waited pool_timeout with an error.
func (l *eventLoop) serveWaiters(now time.Time) {
	for lc := l.firstWaiter(); lc != nil; lc = l.firstWaiter() {
		if now.Sub(lc.waitSince) >= l.e.pool.opts.WaitTimeout {
			lc.timedOut = true
		} else if srv, slotFree := l.acquire(lc.c.tenant); srv != nil {
			give(srv, lc.c)
		} else if slotFree {
			// A connection must be dialled: the session's goroutine does.
			l.popWaiter()
			l.handBack(lc, nil)
			continue
		} else {
			break
		}
		l.popWaiter()
		l.serveClient(lc, now)
	}
}

func (l *eventLoop) serverEvent(srv *ServerConn, events uint32) {
	lconn := srv.nc.(*loopConn)
	srv.mu.Lock()
	owner := srv.owner
	srv.mu.Unlock()
	if lconn.Backlog() > 0 && events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		lconn.WriteBacklog()
	}
	if events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		lconn.armed = true
		l.readServer(srv, lconn)
		if l.servers.Get(lconn.FD) == srv {
			lconn.armed = false
		}
	}
	if owner != nil && owner.lc != nil && l.clients.Get(owner.lc.FD) == owner.lc {
		l.markDirty(owner.lc)
	} else {
		l.setServerInterest(srv, lconn)
	}
}

// readServer handles the server's messages that have arrived on srv's
// socket lconn: each is relayed to (or swallowed for) the client that owns
// the connection, by the same code the session's goroutine uses. It stops
// when the connection leaves the loop (released to the pool, where another
// goroutine may take it: srv.nc is not read again).
func (l *eventLoop) readServer(srv *ServerConn, lconn *loopConn) {
	for l.servers.Get(lconn.FD) == srv {
		typ, frame, body, ok, err := srv.rd.tryNext()
		if err != nil {
			l.failServer(srv, fmt.Errorf("upstream connection lost: %w", err))
			return
		}
		if !ok {
			return
		}
		srv.mu.Lock()
		idle := srv.owner == nil && len(srv.pending) == 0
		srv.mu.Unlock()
		if idle {
			l.failServer(srv, fmt.Errorf("upstream sent %q on an idle connection", typ))
			return
		}
		srv.handle(typ, frame, body, false)
		if l.servers.Get(lconn.FD) != srv {
			return // released to the pool
		}
		if err := srv.brokenErr(); err != nil {
			l.failServer(srv, err)
			return
		}
	}
}

// failServer closes a failed server connection; its owner's session ends
// (ServerConn.fail), since what the server session held is lost.
func (l *eventLoop) failServer(srv *ServerConn, err error) {
	l.unregister(srv)
	srv.fail(err)
	if i := slices.Index(l.idleServers, srv); i >= 0 {
		l.idleServers = slices.Delete(l.idleServers, i, i+1)
		l.e.pool.loopIdle.Add(-1)
		l.e.pool.discard(srv)
	}
}

// settle finishes the round for the clients that had something happen:
// their requests go to the server, their answers to the client, a finished
// tenant application lets their message run again, a draining client with
// no server connection goes back, and the events watched are updated.
func (l *eventLoop) settle() {
	for _, lc := range l.dirty {
		lc.dirty = false
		if l.clients.Get(lc.FD) != lc {
			continue
		}
		c := lc.c
		srv := c.server.Load()
		served := srv != nil && srv.servedBy() == l
		if len(c.out) > 0 {
			if served {
				_, _ = srv.nc.Write(c.out)
			}
			c.out = c.out[:0]
		}
		c.write(nil, true)
		if lc.applying && !l.applied(lc, srv) {
			continue
		}
		if lc.draining && srv == nil {
			l.handBack(lc, proxy.ErrShuttingDown)
			continue
		}
		l.setInterest(lc, srv, served)
		if served {
			l.setServerInterest(srv, srv.nc.(*loopConn))
		}
	}
	clear(l.dirty)
	l.dirty = l.dirty[:0]
}

// applied checks, once the server has answered the statements that apply
// the client's tenant, that they took effect, and lets the client's
// message run again; it reports false when the client was handed back.
func (l *eventLoop) applied(lc *loopClient, srv *ServerConn) bool {
	c := lc.c
	if srv != nil {
		srv.mu.Lock()
		quiet := len(srv.pending) == 0
		ok := srv.owner == c && srv.broken == nil && srv.tenant == c.tenant
		srv.mu.Unlock()
		if !quiet {
			return true
		}
		if ok {
			lc.applying = false
			c.unsynced = lc.applyHold
			l.ready = append(l.ready, lc)
			return true
		}
	}
	lc.applying = false
	c.unsynced = lc.applyHold
	pe := fatal("08006", "tenantgate: could not apply the tenant on the server connection")
	c.write(pe.encode(nil), true)
	l.handBack(lc, pe)
	return false
}

// setInterest registers the events the loop wants for the client, whose
// server connection is srv (nil: none; served: the loop serves its
// socket): input while it serves the client's messages (or holds them and
// the client did not stir) and both the client and its server connection
// keep up, output while answers wait for room in the socket.
func (l *eventLoop) setInterest(lc *loopClient, srv *ServerConn, served bool) {
	var want uint32
	if lc.reading && !(lc.held() && lc.stirred) && lc.Backlog() < maxClientBacklog {
		want = unix.EPOLLIN
		if served && srv.nc.(*loopConn).Backlog() >= maxServerBacklog {
			want = 0
		}
	}
	if lc.Backlog() > 0 {
		want |= unix.EPOLLOUT
	}
	if err := l.p.Watch(&lc.LoopSocket, want); err != nil {
		l.e.opts.Log.Warn("postgres event loop: epoll_ctl failed; the session goes back to its goroutine", "err", err)
		l.handBack(lc, nil)
	}
}

// setServerInterest registers the events the loop wants for a server
// connection: its answers while its client reads them, room for requests
// while they wait.
func (l *eventLoop) setServerInterest(srv *ServerConn, lconn *loopConn) {
	if l.servers.Get(lconn.FD) != srv {
		return // released: no longer the loop's
	}
	want := uint32(unix.EPOLLIN)
	srv.mu.Lock()
	if o := srv.owner; o != nil && o.lc != nil && o.lc.Backlog() >= maxClientBacklog {
		want = 0
	}
	srv.mu.Unlock()
	if lconn.Backlog() > 0 {
		want |= unix.EPOLLOUT
	}
	if err := l.p.Watch(&lconn.LoopSocket, want); err != nil {
		l.failServer(srv, err)
	}
}

// handBack returns the client to its session's goroutine, with the server
// connection it holds given back to the Go runtime; err ends the session,
// proxy.ErrSessionClosed closes the socket here.
func (l *eventLoop) handBack(lc *loopClient, err error) {
	if !lc.reading {
		return
	}
	c := lc.c
	c.write(nil, true)
	_ = l.p.Watch(&lc.LoopSocket, 0)
	l.clients.Delete(lc.FD)
	lc.reading = false
	if lc.applying {
		// The injected statements' answers are read by the session's
		// goroutine with the rest; its message runs after them.
		c.unsynced, lc.applying = lc.applyHold, false
	}
	if srv := c.server.Load(); srv != nil && srv.servedBy() == l && srv.brokenErr() == nil {
		l.unregister(srv)
		// Requests the socket did not take go first with what the
		// session's goroutine writes next.
		if backlog := srv.nc.(*loopConn).TakeBacklog(); len(backlog) > 0 {
			c.out = append(backlog, c.out...)
		}
		if cerr := srv.toRuntime(); cerr != nil {
			srv.fail(cerr)
		}
	}
	fd := lc.FD
	if errors.Is(err, proxy.ErrSessionClosed) {
		_ = unix.Close(fd)
		fd = -1
	}
	lc.back <- proxy.Handback{FD: fd, Backlog: lc.TakeBacklog(), Err: err}
}

// closeIdle hands back, to be closed, the clients that sent nothing for
// the idle timeout while holding no server connection.
func (l *eventLoop) closeIdle(now time.Time) {
	for _, lc := range l.clients.All() {
		if lc.waitSince.IsZero() && lc.c.server.Load() == nil && now.Sub(lc.lastRead) >= l.idle {
			l.handBack(lc, proxy.ErrIdle)
		}
	}
}

// stop hands every client back to its goroutine, the ones still waiting
// to be adopted too; nothing more reaches the inbox.
func (l *eventLoop) stop() {
	for _, r := range l.p.Stop() {
		if r.kind == reqAdopt {
			r.lc.back <- proxy.Handback{FD: r.lc.FD}
		}
	}
	for _, lc := range l.clients.All() {
		l.handBack(lc, nil)
	}
	l.yieldIdle()
	l.p.Close()
}

// loopable reports whether the session can go to the event loop: between
// transactions of transaction pooling, with nothing buffered either way.
func (c *clientSession) loopable() bool {
	return c.e.loop != nil && !c.noLoop && c.transactionPooling && !c.pinned && !c.skipping && !c.unsynced &&
		c.server.Load() == nil && !c.rd.buffered() && len(c.out) == 0 && !c.draining()
}

// serveInLoop hands the session to the event loop and waits until the loop
// hands it back; err ends the session.
func (c *clientSession) serveInLoop() error {
	l := c.e.loop
	c.write(nil, true)
	if err := c.writeErr(); err != nil {
		return err
	}
	lc := &loopClient{c: c, back: make(chan proxy.Handback, 1)}
	fd, err := c.s.DetachSocket(func() { l.post(loopRequest{kind: reqDrop, lc: lc}) })
	if err != nil {
		if errors.Is(err, proxy.ErrNotDetachable) {
			c.noLoop = true
			return nil
		}
		return err
	}
	lc.FD = fd
	c.lc = lc
	c.rd.setSource(lc)
	c.wmu.Lock()
	c.w.Reset(lc)
	c.wmu.Unlock()
	hb := proxy.Handback{FD: fd}
	if l.post(loopRequest{kind: reqAdopt, lc: lc}) {
		hb = c.s.AwaitHandback(lc.back,
			func() { l.post(loopRequest{kind: reqDrop, lc: lc}) },
			func() { l.post(loopRequest{kind: reqDrain, lc: lc}) })
	} else {
		c.noLoop = true // the loop has stopped
	}
	c.lc = nil
	if hb.FD < 0 {
		return cmp.Or(context.Cause(c.s.Context()), hb.Err, net.ErrClosed)
	}
	if err := c.s.AttachSocket(hb.FD); err != nil {
		return err
	}
	conn := c.s.Conn()
	c.rd.setSource(conn)
	c.wmu.Lock()
	c.w.Reset(conn)
	c.wmu.Unlock()
	if len(hb.Backlog) > 0 {
		c.write(hb.Backlog, true)
	}
	if errors.Is(hb.Err, proxy.ErrShuttingDown) {
		return hb.Err // Serve tells the client (57P01)
	}
	if hb.Err != nil {
		c.s.Close(hb.Err)
		return hb.Err
	}
	return c.writeErr()
}

// servedBy is the event loop that serves the connection's socket, nil when
// the Go runtime does.
func (c *ServerConn) servedBy() *eventLoop {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loop
}

// toLoop takes the socket of a connection nobody else uses out of the Go
// runtime for l.
func (c *ServerConn) toLoop(l *eventLoop) error {
	fd, err := proxy.DetachFD(c.nc)
	if err != nil {
		return err
	}
	nc := &loopConn{loopSocket: loopSocket{LoopSocket: proxy.LoopSocket{FD: fd}}}
	c.mu.Lock()
	c.nc, c.loop, c.peek = nc, l, nil
	c.rd.setSource(nc)
	c.mu.Unlock()
	return nil
}

// toRuntime gives the socket of a connection nobody else uses back to the
// Go runtime; what its reader buffered stays.
func (c *ServerConn) toRuntime() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	lconn, ok := c.nc.(*loopConn)
	if !ok {
		return nil
	}
	nc, err := proxy.AttachFD(lconn.FD)
	lconn.closed = true // AttachFD closed the descriptor (nc holds a copy)
	if err != nil {
		c.broken = err
		return err
	}
	c.nc, c.loop, c.peek = nc, nil, newIdlePeek(nc)
	c.rd.setSource(nc)
	return nil
}

// brokenErr is why the connection cannot be used, nil while it can.
func (c *ServerConn) brokenErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}
