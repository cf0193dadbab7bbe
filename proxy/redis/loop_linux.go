package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tenantgate/tenantgate/proxy"
)

// Bounds on what the event loop buffers for one peer.
const (
	// maxClientBacklog is how many reply bytes a client may leave unread
	// before the loop stops reading its commands.
	maxClientBacklog = 1 << 20
	// maxUpstreamBacklog is how many command bytes the upstream may leave
	// unread before the loop waits for it, all its clients with it.
	maxUpstreamBacklog = 4 << 20
	// dialBackoff is how long a loop waits after a failed dial before the
	// next.
	dialBackoff = time.Second
)

var errDialBackoff = errors.New("the last upstream dial failed: not retried yet")

// eventLoop serves, from one goroutine and one epoll instance, the sessions
// whose commands need nothing but a shared upstream connection: the steady
// state of most clients. It holds their sockets outside the Go runtime
// (proxy.Session.DetachSocket) and one upstream connection per protocol
// version; one epoll_wait brings the commands of every client that sent
// some, one write carries them upstream, and each reply goes to the client
// its command came from, rewritten, as on a muxLink. No goroutine wakes per
// command, which is what a shared connection costs otherwise (see
// docs/performance.md).
//
// The loop runs each command through the session's own code (handle, with
// the same plan, rewrite, refusals and replies), so a session behaves the
// same in and out of it. It stops reading a client at the first command
// that may block the goroutine running it (AUTH, HELLO, RESET, QUIT, and
// any command that needs a dedicated connection), at a malformed request
// or at the end of the client's stream; once every command before that one
// is answered, it hands the socket back to the session's goroutine, which
// goes on from that command as if it had read it itself.
type eventLoop struct {
	e    *Engine
	p    *proxy.Poller[loopRequest]
	done chan struct{}

	dial sync.Mutex      // serialises upstream dials
	live [2]atomic.Bool  // an upstream of protocol 2 or 3 is in the loop or on its way
	upID [2]atomic.Int64 // the upstream's client id (CLIENT ID) per protocol; 0: none
	// retryAt (Unix nanoseconds) is when a dial may be tried again after
	// one failed: until then sessions stay on their goroutines at once
	// instead of each waiting for a dial that is likely to fail too.
	retryAt atomic.Int64

	// The loop goroutine's own state.
	ups      [2]*loopUpstream
	clients  proxy.FDTable[loopClient] // by descriptor
	dirty    []*loopClient             // replies to flush
	stopping []*loopClient             // not read any more: handed back once answered
	idle     time.Duration             // the sessions' idle timeout
	idleScan time.Time                 // when the clients were last checked for it
	events   []unix.EpollEvent
}

type loopRequestKind uint8

const (
	reqAdopt    loopRequestKind = iota // serve the client
	reqRelease                         // hand the client back once its commands are answered
	reqDrop                            // the session was closed: close the socket now
	reqUpstream                        // a new upstream connection
	reqStop                            // the engine is closing
)

type loopRequest struct {
	kind loopRequestKind
	lc   *loopClient
	up   *loopUpstream
}

// newEventLoops starts n event loops; none (nil) when epoll is not
// available, and the sessions then use shared connections from their own
// goroutines.
func newEventLoops(e *Engine, n int) []*eventLoop {
	loops := make([]*eventLoop, 0, n)
	for range n {
		l, err := newEventLoop(e)
		if err != nil {
			e.log.Warn("redis event loop unavailable; sessions are served by their own goroutines", "err", err)
			for _, l := range loops {
				l.close()
			}
			return nil
		}
		loops = append(loops, l)
	}
	return loops
}

func newEventLoop(e *Engine) (*eventLoop, error) {
	p, err := proxy.NewPoller[loopRequest]()
	if err != nil {
		return nil, err
	}
	l := &eventLoop{
		e: e, p: p, done: make(chan struct{}),
		events: make([]unix.EpollEvent, 256),
	}
	go l.run()
	return l, nil
}

// post queues a request for the loop; false when the loop has stopped.
func (l *eventLoop) post(r loopRequest) bool { return l.p.Post(r, r.kind == reqStop) }

// close stops the loop: its clients are handed back with errEngineClosed
// and its upstream connections closed.
func (l *eventLoop) close() {
	if l.post(loopRequest{kind: reqStop}) {
		<-l.done
	}
}

// ensureUpstream gives the loop an upstream connection of protocol proto
// if it has none, dialling it from the calling session's goroutine.
func (l *eventLoop) ensureUpstream(ctx context.Context, proto int) error {
	if l.live[proto-2].Load() {
		return nil
	}
	if time.Now().UnixNano() < l.retryAt.Load() {
		return errDialBackoff
	}
	l.dial.Lock()
	defer l.dial.Unlock()
	if l.live[proto-2].Load() {
		return nil
	}
	if time.Now().UnixNano() < l.retryAt.Load() {
		return errDialBackoff
	}
	up, err := l.e.upstream.dial(ctx, proto)
	if err != nil {
		l.retryAt.Store(time.Now().Add(dialBackoff).UnixNano())
		return err
	}
	if err := l.e.loadCommandTable(up); err != nil {
		_ = up.conn.Close()
		return err
	}
	if up.replies.buffered() {
		_ = up.conn.Close()
		return protocolErrorf("a reply no request asked for")
	}
	fd, err := proxy.DetachFD(up.conn)
	if err != nil {
		_ = up.conn.Close()
		return err
	}
	if !l.post(loopRequest{kind: reqUpstream, up: &loopUpstream{LoopSocket: proxy.LoopSocket{FD: fd}, proto: proto, id: up.id}}) {
		_ = unix.Close(fd)
		return errEngineClosed
	}
	l.live[proto-2].Store(true)
	return nil
}

func (l *eventLoop) run() {
	defer close(l.done)
	for {
		timeout := -1
		if l.idle > 0 && l.clients.Len() > 0 {
			timeout = int(max(min(l.idle/4, time.Second), 10*time.Millisecond) / time.Millisecond)
		}
		n, err := l.p.Wait(l.events, timeout)
		if err != nil && !errors.Is(err, unix.EINTR) {
			l.e.log.Error("redis event loop failed; its sessions go back to their goroutines", "err", err)
			l.stop(fmt.Errorf("event loop: %w", err))
			return
		}
		now := time.Now()
		for _, ev := range l.events[:max(n, 0)] {
			fd := int(ev.Fd)
			if l.p.IsWake(fd) {
				if l.takeRequests(now) {
					return
				}
				continue
			}
			if u := l.upstreamOf(fd); u != nil {
				if ev.Events&unix.EPOLLOUT != 0 {
					l.writeUpstream(u)
				}
				if ev.Events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 && l.ups[u.proto-2] == u {
					l.readUpstream(u)
				}
				continue
			}
			lc := l.clients.Get(fd)
			if lc == nil {
				continue // handed back earlier in this round
			}
			if lc.Backlog() > 0 && ev.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				lc.WriteBacklog()
			}
			if lc.reading && ev.Events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				l.readClient(lc, now)
			}
			l.setInterest(lc)
		}
		l.flush()
		if l.idle > 0 && now.Sub(l.idleScan) >= l.idle/4 {
			l.idleScan = now
			l.closeIdle(now)
		}
	}
}

// upstreamID is the server's client id of the loop's upstream connection
// of protocol proto, 0 when it has none.
func (l *eventLoop) upstreamID(proto int) int64 { return l.upID[proto-2].Load() }

func (l *eventLoop) upstreamOf(fd int) *loopUpstream {
	for _, u := range l.ups {
		if u != nil && u.FD == fd {
			return u
		}
	}
	return nil
}

// takeRequests serves the inbox; it reports whether the loop stops.
func (l *eventLoop) takeRequests(now time.Time) (stop bool) {
	for _, r := range l.p.Take() {
		switch r.kind {
		case reqAdopt:
			l.adopt(r.lc, now)
		case reqRelease:
			if l.clients.Get(r.lc.FD) == r.lc {
				l.stopReading(r.lc)
			}
		case reqDrop:
			if l.clients.Get(r.lc.FD) == r.lc {
				l.handBack(r.lc, proxy.ErrSessionClosed)
			}
		case reqUpstream:
			l.addUpstream(r.up)
		case reqStop:
			l.stop(errEngineClosed)
			return true
		}
	}
	return false
}

func (l *eventLoop) adopt(lc *loopClient, now time.Time) {
	if l.ups[lc.proto-2] == nil {
		lc.back <- proxy.Handback{FD: lc.FD}
		return
	}
	lc.reading, lc.lastRead = true, now
	l.clients.Set(lc.FD, lc)
	if d := lc.c.s.IdleTimeout(); d > 0 {
		l.idle = d
	}
	l.setInterest(lc)
}

func (l *eventLoop) addUpstream(u *loopUpstream) {
	if old := l.ups[u.proto-2]; old != nil {
		l.failUpstream(old, errors.New("replaced"))
	}
	if err := l.p.Watch(&u.LoopSocket, unix.EPOLLIN); err != nil {
		_ = unix.Close(u.FD)
		l.live[u.proto-2].Store(false)
		return
	}
	l.ups[u.proto-2] = u
	l.upID[u.proto-2].Store(u.id)
	l.e.conns.add(stateShared, 1)
	l.e.log.Debug("shared redis upstream connection opened", "upstream_client_id", u.id, "protocol", u.proto, "event_loop", true)
}

// readClient reads what the client sent and runs its commands.
func (l *eventLoop) readClient(lc *loopClient, now time.Time) {
	c := lc.c
	if err := c.in.fill(); err != nil {
		if !errors.Is(err, proxy.ErrWouldBlock) {
			// The end of the stream, a broken or oversized request: the
			// session's goroutine meets it again and answers as usual.
			l.stopReading(lc)
		}
		return
	}
	lc.lastRead, c.now = now, now
	cmds, err := c.in.parse()
	if err != nil {
		l.stopReading(lc)
		return
	}
	for _, cmd := range cmds {
		if !c.handleInLoop(cmd) {
			c.in.unread(cmd)
			l.stopReading(lc)
			break
		}
	}
	if b := c.batch; b.want > 0 {
		u := l.ups[lc.proto-2]
		u.out = append(u.out, b.commands...)
		u.fifo = append(u.fifo, loopPending{lc: lc, n: b.want})
		b.reset()
	}
	l.markDirty(lc)
}

func (l *eventLoop) markDirty(lc *loopClient) {
	if !lc.dirty {
		lc.dirty = true
		l.dirty = append(l.dirty, lc)
	}
}

// stopReading stops taking the client's commands; flush hands it back once
// the ones taken are answered.
func (l *eventLoop) stopReading(lc *loopClient) {
	if lc.reading {
		lc.reading = false
		l.stopping = append(l.stopping, lc)
		l.setInterest(lc)
	}
}

// setInterest registers the events the loop wants for the client: input
// while it reads the client and the client keeps up with its replies,
// output while replies wait for room in the socket.
func (l *eventLoop) setInterest(lc *loopClient) {
	if l.clients.Get(lc.FD) != lc {
		return
	}
	var want uint32
	if lc.reading && lc.Backlog() < maxClientBacklog {
		want |= unix.EPOLLIN
	}
	if lc.Backlog() > 0 {
		want |= unix.EPOLLOUT
	}
	if err := l.p.Watch(&lc.LoopSocket, want); err != nil {
		l.e.log.Warn("redis event loop: epoll_ctl failed; the session goes back to its goroutine", "err", err)
		lc.reading, lc.Events = false, 0
		l.handBack(lc, nil)
	}
}

// flush sends the commands taken upstream, writes the replies relayed to
// their clients and hands back the clients that stopped and are answered.
func (l *eventLoop) flush() {
	for _, u := range l.ups {
		if u != nil && len(u.out) > u.written {
			l.writeUpstream(u)
		}
	}
	for _, lc := range l.dirty {
		lc.dirty = false
		if l.clients.Get(lc.FD) != lc {
			continue
		}
		c := lc.c
		c.mu.Lock()
		_ = c.out.Flush()
		c.mu.Unlock()
		l.setInterest(lc)
	}
	l.dirty = l.dirty[:0]
	if len(l.stopping) == 0 {
		return
	}
	kept := l.stopping[:0]
	for _, lc := range l.stopping {
		if l.clients.Get(lc.FD) != lc {
			continue
		}
		c := lc.c
		c.mu.Lock()
		answered := c.queue.empty()
		c.mu.Unlock()
		if answered {
			l.handBack(lc, nil)
			continue
		}
		kept = append(kept, lc)
	}
	clear(l.stopping[len(kept):])
	l.stopping = kept
}

// handBack returns the client to its session's goroutine, with err when
// the session must end; proxy.ErrSessionClosed closes the socket here.
func (l *eventLoop) handBack(lc *loopClient, err error) {
	c := lc.c
	c.mu.Lock()
	_ = c.out.Flush()
	c.mu.Unlock()
	_ = l.p.Watch(&lc.LoopSocket, 0)
	l.clients.Delete(lc.FD)
	lc.gone = true
	fd := lc.FD
	if errors.Is(err, proxy.ErrSessionClosed) {
		_ = unix.Close(fd)
		fd = -1
	}
	lc.back <- proxy.Handback{FD: fd, Backlog: lc.TakeBacklog(), Err: err}
}

// closeIdle hands back, to be closed, the clients that sent nothing for
// the idle timeout while nothing of theirs was in flight.
func (l *eventLoop) closeIdle(now time.Time) {
	for _, lc := range l.clients.All() {
		if !lc.reading || now.Sub(lc.lastRead) < l.idle {
			continue
		}
		c := lc.c
		c.mu.Lock()
		answered := c.queue.empty()
		c.mu.Unlock()
		if answered {
			l.handBack(lc, proxy.ErrIdle)
		}
	}
}

// stop hands every client back with err, the ones still waiting to be
// adopted too, and closes the upstreams; nothing more reaches the inbox.
func (l *eventLoop) stop(err error) {
	for _, r := range l.p.Stop() {
		if r.kind == reqAdopt {
			r.lc.back <- proxy.Handback{FD: r.lc.FD, Err: err}
		}
	}
	for _, lc := range l.clients.All() {
		l.handBack(lc, err)
	}
	for _, u := range l.ups {
		if u != nil {
			l.closeUpstream(u)
		}
	}
	l.p.Close()
}

// loopClient is a session's client socket while its event loop serves it.
// It is the session's request reader's source and reply writer's sink,
// both non-blocking; replies the socket did not take yet wait in its
// backlog.
type loopClient struct {
	proxy.LoopSocket
	c     *clientSession
	proto int
	back  chan proxy.Handback // cap 1: the one handback

	// The loop goroutine's state.
	reading  bool
	dirty    bool
	gone     bool // handed back: its replies still in flight are dropped
	lastRead time.Time
}

func newLoopClient(c *clientSession) *loopClient {
	return &loopClient{c: c, proto: c.proto, back: make(chan proxy.Handback, 1)}
}

// loopUpstream is an event loop's connection to the upstream: the commands
// its clients sent, in order, and for each client's run of them whom the
// replies go to.
type loopUpstream struct {
	proxy.LoopSocket // its descriptor and the events registered; not its reader or writer
	proto            int
	id               int64

	out     []byte
	written int // out[:written] has been sent
	in      []byte
	start   int // in[start:end] is not consumed yet
	end     int
	scan    replyScanner
	fifo    []loopPending
	head    int
}

// loopPending is n commands of one client waiting for their replies.
type loopPending struct {
	lc *loopClient
	n  int
}

func (l *eventLoop) writeUpstream(u *loopUpstream) {
	for u.written < len(u.out) {
		n, err := proxy.WriteNonblock(u.FD, u.out[u.written:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			if len(u.out)-u.written > maxUpstreamBacklog {
				// Redis is not reading: wait for it rather than buffer more.
				fds := []unix.PollFd{{Fd: int32(u.FD), Events: unix.POLLOUT}}
				if n, _ := unix.Poll(fds, int(l.e.upstream.dialTimeout/time.Millisecond)); n == 1 {
					continue
				}
				l.failUpstream(u, errors.New("the upstream stopped reading commands"))
				return
			}
			l.setUpstreamInterest(u, unix.EPOLLIN|unix.EPOLLOUT)
			return
		}
		if err != nil {
			l.failUpstream(u, err)
			return
		}
		u.written += n
	}
	u.out, u.written = reuse(u.out), 0
	l.setUpstreamInterest(u, unix.EPOLLIN)
}

func (l *eventLoop) setUpstreamInterest(u *loopUpstream, want uint32) {
	if err := l.p.Watch(&u.LoopSocket, want); err != nil {
		l.failUpstream(u, err)
	}
}

// readUpstream reads replies and relays each to the client whose command
// it answers.
func (l *eventLoop) readUpstream(u *loopUpstream) {
	switch pending := u.end - u.start; {
	case pending == 0:
		u.start, u.end = 0, 0
		if len(u.in) > maxRetainedBuffer || u.in == nil {
			u.in = make([]byte, maxLineLen)
		}
	case u.end == len(u.in) && u.start > 0:
		copy(u.in, u.in[u.start:u.end])
		u.start, u.end = 0, pending
	case u.end == len(u.in):
		grown := make([]byte, 2*len(u.in))
		copy(grown, u.in[u.start:u.end])
		u.in, u.start, u.end = grown, 0, pending
	}
	n, err := proxy.ReadNonblock(u.FD, u.in[u.end:])
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return
	case err != nil:
		l.failUpstream(u, err)
		return
	case n == 0:
		l.failUpstream(u, io.EOF)
		return
	}
	u.end += n
	for u.start < u.end {
		size, err := u.scan.next(u.in[u.start:u.end])
		if err != nil {
			l.failUpstream(u, err)
			return
		}
		if size == 0 {
			return
		}
		raw := u.in[u.start : u.start+size]
		u.start += size
		if !l.deliver(u, raw) {
			return
		}
	}
}

// deliver relays one reply; false when the upstream failed.
func (l *eventLoop) deliver(u *loopUpstream, raw []byte) bool {
	if raw[0] == '>' {
		return true // a push no client asked for: it may name another tenant's keys
	}
	if u.head == len(u.fifo) {
		l.failUpstream(u, protocolErrorf("a reply no request asked for"))
		return false
	}
	p := &u.fifo[u.head]
	lc := p.lc
	if p.n--; p.n == 0 {
		u.fifo[u.head] = loopPending{}
		if u.head++; u.head == len(u.fifo) {
			u.fifo, u.head = u.fifo[:0], 0
		}
	}
	if lc.gone {
		return true
	}
	c := lc.c
	c.mu.Lock()
	err := c.relay(raw)
	c.mu.Unlock()
	if err != nil {
		l.handBack(lc, err)
		return true
	}
	l.markDirty(lc)
	return true
}

// failUpstream closes a failed upstream connection. The sessions with
// commands in flight on it end, since their outcome is unknown; the loop's
// other sessions of that protocol go back to their goroutines, which find
// a connection again.
func (l *eventLoop) failUpstream(u *loopUpstream, err error) {
	if l.ups[u.proto-2] != u {
		return
	}
	l.e.log.Warn("shared redis upstream connection failed; closing the sessions with commands in flight", "err", err)
	cause := fmt.Errorf("redis upstream: %w", err)
	for _, p := range u.fifo[u.head:] {
		if !p.lc.gone {
			l.handBack(p.lc, cause)
		}
	}
	l.closeUpstream(u)
	for _, lc := range l.clients.All() {
		if lc.proto == u.proto {
			l.stopReading(lc)
		}
	}
}

func (l *eventLoop) closeUpstream(u *loopUpstream) {
	_ = l.p.Watch(&u.LoopSocket, 0)
	_ = unix.Close(u.FD)
	l.ups[u.proto-2] = nil
	l.live[u.proto-2].Store(false)
	l.upID[u.proto-2].Store(0)
	l.e.conns.add(stateShared, -1)
	u.fifo, u.head = nil, 0
}

// serveInLoop hands the session to its event loop when all it needs is a
// shared upstream connection, and waits until the loop hands it back. It
// reports whether it did; err ends the session.
func (c *clientSession) serveInLoop() (served bool, err error) {
	if len(c.e.loops) == 0 || c.noLoop || !c.authed || c.pump != nil || c.inMulti || c.subs.any() || c.in.buffered() {
		return false, nil
	}
	l := c.e.loops[c.muxIndex%len(c.e.loops)]
	if err := l.ensureUpstream(c.s.Context(), c.proto); err != nil {
		c.e.log.Debug("redis event loop has no upstream connection; the session stays on its goroutine", "session_id", c.s.ID(), "err", err)
		return false, nil
	}
	lc := newLoopClient(c)
	fd, err := c.s.DetachSocket(func() { l.post(loopRequest{kind: reqDrop, lc: lc}) })
	if err != nil {
		if errors.Is(err, proxy.ErrNotDetachable) {
			c.noLoop = true
		}
		return false, nil
	}
	lc.FD = fd
	c.in.r = lc
	c.out.Reset(lc)
	hb := proxy.Handback{FD: fd}
	if l.post(loopRequest{kind: reqAdopt, lc: lc}) {
		hb = c.s.AwaitHandback(lc.back,
			func() { l.post(loopRequest{kind: reqDrop, lc: lc}) },
			func() { l.post(loopRequest{kind: reqRelease, lc: lc}) })
	} else {
		c.noLoop = true // the loop has stopped
	}
	if hb.FD < 0 {
		return true, cmp.Or(context.Cause(c.s.Context()), hb.Err)
	}
	if err := c.s.AttachSocket(hb.FD); err != nil {
		return true, err
	}
	conn := c.s.Conn()
	c.in.r = conn
	c.out.Reset(conn)
	if len(hb.Backlog) > 0 {
		c.mu.Lock()
		_, _ = c.out.Write(hb.Backlog)
		err := c.out.Flush()
		c.mu.Unlock()
		if err != nil {
			return true, err
		}
	}
	if hb.Err != nil {
		c.s.Close(hb.Err)
		return true, hb.Err
	}
	return true, nil
}
