package redis

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
)

// DefaultUpstreamConnections is how many shared upstream connections the
// engine keeps per protocol version when Options.UpstreamConnections is 0.
const DefaultUpstreamConnections = 1

var errEngineClosed = errors.New("the Redis engine is closed")

// muxPool is the engine's shared upstream connections: n per protocol
// version (RESP2 and RESP3 replies differ, so a connection serves clients
// of one version). A session without per-connection state sends its
// commands over one of them, and one write and one read of it carry the
// commands and replies of many sessions.
type muxPool struct {
	conns [2][]*muxConn // [0] RESP2, [1] RESP3
	next  atomic.Uint32
}

func newMuxPool(e *Engine, n int) *muxPool {
	p := &muxPool{}
	for i, proto := range []int{2, 3} {
		for range n {
			p.conns[i] = append(p.conns[i], &muxConn{e: e, proto: proto})
		}
	}
	return p
}

// assign returns the index of the shared connection a new session uses,
// spreading sessions evenly.
func (p *muxPool) assign() int { return int(p.next.Add(1)-1) % len(p.conns[0]) }

// conn returns the shared connection i of protocol proto.
func (p *muxPool) conn(proto, i int) *muxConn { return p.conns[proto-2][i] }

func (p *muxPool) close() {
	for _, conns := range p.conns {
		for _, m := range conns {
			m.close()
		}
	}
}

// muxConn is one shared connection: its current link to the upstream, and
// a new one after that fails.
type muxConn struct {
	e     *Engine
	proto int

	dial   sync.Mutex // serialises redials
	closed bool       // under dial
	cur    atomic.Pointer[muxLink]
}

// link returns a working link, connecting first if there is none (or the
// last one failed).
func (m *muxConn) link(ctx context.Context) (*muxLink, error) {
	if l := m.cur.Load(); l != nil && !l.failed.Load() {
		return l, nil
	}
	m.dial.Lock()
	defer m.dial.Unlock()
	if m.closed {
		return nil, errEngineClosed
	}
	if l := m.cur.Load(); l != nil && !l.failed.Load() {
		return l, nil
	}
	up, err := m.e.upstream.dial(ctx, m.proto)
	if err != nil {
		return nil, err
	}
	if err := m.e.loadCommandTable(up); err != nil {
		_ = up.conn.Close()
		return nil, err
	}
	l := newMuxLink(up, func() { m.e.conns.add(stateShared, -1) })
	m.e.conns.add(stateShared, 1)
	m.cur.Store(l)
	m.e.log.Debug("shared redis upstream connection opened", "upstream_client_id", up.id, "protocol", m.proto)
	return l, nil
}

// close ends the current link and refuses new ones; it returns once the
// link's goroutines have stopped.
func (m *muxConn) close() {
	m.dial.Lock()
	m.closed = true
	l := m.cur.Load()
	m.dial.Unlock()
	if l != nil {
		l.fail(errEngineClosed)
		<-l.done
	}
}

// muxBatch is what one session has in flight on a shared connection: its
// commands, and once done is signalled, the replies to them (or err). A
// session has at most one batch in flight, so the replies held for it are
// those to one read of its client's commands.
type muxBatch struct {
	commands []byte
	want     int    // replies expected
	replies  []byte // written by the link's reader until done
	ends     []int  // replies[ends[i-1]:ends[i]] answers command i
	err      error  // set before done when the link failed
	done     chan struct{}
}

func newMuxBatch() *muxBatch { return &muxBatch{done: make(chan struct{}, 1)} }

// reset empties the batch for the session's next one.
func (b *muxBatch) reset() {
	b.commands, b.replies, b.ends, b.want, b.err = reuse(b.commands), reuse(b.replies), b.ends[:0], 0, nil
}

// muxLink is one connection to the upstream shared by many sessions.
//
// Ordering: a batch's commands are appended to out and the batch to
// waiting under mu, in the same order, so the upstream's replies answer
// the waiting batches front to back. Writing: the session that finds no
// write in progress writes out itself, in one system call; batches added
// meanwhile are written together by the writer goroutine. Reading: the
// reader goroutine appends each reply to the front batch and signals its
// session when the batch is complete. It never writes to a client, so a
// slow client stalls only its own session.
type muxLink struct {
	up     *upstream
	closed func()        // called once, when the link fails
	failed atomic.Bool   // set with err
	wake   chan struct{} // cap 1: more to write
	stop   chan struct{} // closed when the link fails
	done   chan struct{} // closed when the reader and writer have stopped

	mu      sync.Mutex
	err     error
	out     []byte // commands not written yet
	spare   []byte // out's previous buffer, reused
	writing bool   // a session or the writer goroutine is writing
	waiting batchQueue
}

func newMuxLink(up *upstream, closed func()) *muxLink {
	l := &muxLink{
		up: up, closed: closed, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	var stopped sync.WaitGroup
	stopped.Add(2)
	go func() { defer stopped.Done(); l.readReplies() }()
	go func() { defer stopped.Done(); l.writeLoop() }()
	go func() { stopped.Wait(); close(l.done) }()
	return l
}

// submit queues b's commands. It returns an error, having sent nothing,
// when the link has already failed; a failure after that reaches the
// session through b.err.
func (l *muxLink) submit(b *muxBatch) error {
	l.mu.Lock()
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return err
	}
	l.out = append(l.out, b.commands...)
	l.waiting.push(b)
	if l.writing {
		l.mu.Unlock()
		return nil
	}
	l.writing = true
	l.mu.Unlock()
	// Let the sessions that are ready to run now add their batches first:
	// they go out in this one write.
	runtime.Gosched()
	l.mu.Lock()
	buf := l.takeLocked()
	l.mu.Unlock()
	if l.write(buf) {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// takeLocked swaps out the pending bytes for the spare buffer.
func (l *muxLink) takeLocked() []byte {
	buf := l.out
	l.out, l.spare = l.spare[:0], nil
	return buf
}

// write writes buf and reports whether more bytes are waiting, in which
// case the caller still holds the writing turn.
func (l *muxLink) write(buf []byte) (more bool) {
	_, err := l.up.conn.Write(buf)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spare = reuse(buf)
	if err != nil {
		l.failLocked(err)
	}
	if l.err != nil || len(l.out) == 0 {
		l.writing = false
		return false
	}
	return true
}

// writeLoop writes what accumulated while a session was writing.
func (l *muxLink) writeLoop() {
	for {
		select {
		case <-l.stop:
			return
		case <-l.wake:
		}
		for more := true; more; {
			l.mu.Lock()
			buf := l.takeLocked()
			l.mu.Unlock()
			more = l.write(buf)
		}
	}
}

// readReplies hands each reply to the batch it answers, in order.
func (l *muxLink) readReplies() {
	var b *muxBatch
	rr := l.up.replies
	for {
		if err := rr.waitReply(); err != nil {
			l.fail(err)
			return
		}
		if b == nil {
			l.mu.Lock()
			b = l.waiting.front()
			l.mu.Unlock()
		}
		if b == nil {
			// No session asked for it: a push (dropped: it may name
			// another tenant's keys) or a broken upstream.
			raw, err := rr.next()
			if err == nil && raw[0] != '>' {
				err = protocolErrorf("a reply no request asked for")
			}
			if err != nil {
				l.fail(err)
				return
			}
			continue
		}
		start := len(b.replies)
		var err error
		if b.replies, err = rr.appendNext(b.replies); err != nil {
			l.fail(err)
			return
		}
		if b.replies[start] == '>' {
			b.replies = b.replies[:start]
			continue
		}
		b.ends = append(b.ends, len(b.replies))
		if len(b.ends) < b.want {
			continue
		}
		l.mu.Lock()
		if l.err != nil {
			l.mu.Unlock()
			return // fail has signalled b already
		}
		l.waiting.pop()
		l.mu.Unlock()
		b.done <- struct{}{}
		b = nil
	}
}

// fail ends the link: the connection is closed and every batch still
// waiting gets err, since its commands' outcome is unknown.
func (l *muxLink) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failLocked(err)
}

func (l *muxLink) failLocked(err error) {
	if l.err != nil {
		return
	}
	l.err = err
	l.failed.Store(true)
	close(l.stop)
	_ = l.up.conn.Close()
	l.closed()
	for b := l.waiting.front(); b != nil; b = l.waiting.front() {
		b.err = err
		b.done <- struct{}{}
		l.waiting.pop()
	}
	l.out, l.spare = nil, nil
}

// batchQueue is a FIFO of batches.
type batchQueue struct {
	items []*muxBatch
	head  int
}

func (q *batchQueue) push(b *muxBatch) { q.items = append(q.items, b) }

// front returns the oldest batch, nil when there is none.
func (q *batchQueue) front() *muxBatch {
	if q.head == len(q.items) {
		return nil
	}
	return q.items[q.head]
}

func (q *batchQueue) pop() {
	q.items[q.head] = nil
	if q.head++; q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
}
