package redis

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/redcon"

	"github.com/tenantgate/tenantgate/policy"
	"github.com/tenantgate/tenantgate/proxy"
)

// ioBufferSize is the size of each write buffer (client and upstream). With
// the request and reply readers' buffers a session costs about 64 KiB.
const ioBufferSize = 16 << 10

// clientSession serves one client connection. Its goroutine reads a batch
// of the client's commands (what one read brings), answers the ones the
// proxy handles itself and sends the rest, scoped, upstream:
//
//   - on a shared connection (muxLink) while the session holds no
//     per-connection state: the batch goes out as one unit and the
//     session's goroutine waits for its replies, rewrites them and writes
//     them to the client itself before it reads the client's next batch;
//   - on its own dedicated connection once a command needs one (bindingOf):
//     the commands already sent on the shared connection are answered
//     first, then the session stays on the dedicated connection, whose
//     replyPump goroutine relays the replies, until RESET or a tenant
//     switch.
type clientSession struct {
	e    *Engine
	s    *proxy.Session
	in   *requestReader
	plan plan

	// State of the command side, touched only by the serve goroutine.
	authed     bool
	scope      *tenantScope
	req        *proxy.RequestMetrics
	proto      int
	pump       *replyPump // the dedicated connection's; nil while on a shared one
	muxIndex   int        // which of the engine's shared connections the session uses
	batch      *muxBatch  // commands for the shared connection, sent at the end of the client's batch
	broken     error      // the shared connection failed with commands in flight: the session ends
	inMulti    bool
	multiDirty bool // a command was refused inside MULTI: EXEC must abort
	// The connection name and library attributes kept for the client while
	// on a shared connection (CLIENT SETNAME, HELLO SETNAME, CLIENT SETINFO).
	clientName, libName, libVer []byte
	// multiReplies are the reply kinds of the commands queued in MULTI, to
	// rewrite EXEC's reply.
	multiReplies []replyKind
	subs         subscriptions
	// now is when the current batch of commands was read: their start
	// time for the latency metric and for the rate limit.
	now time.Time
	// The tenant's rate limit (nil without one) and the audit throttle of
	// rate limiting.
	limit        *policy.TenantLimit
	limitAudited time.Time
	limitQuiet   int  // rate-limited commands not audited since limitAudited
	idleExempt   bool // the session holds subscriptions: no idle timeout
	// noLoop: the session cannot be served by an event loop (TLS).
	noLoop bool
	// handedBack: the event loop just returned the session, which reads
	// its client itself at least once before going back to it.
	handedBack bool

	// The client writer and the queue of expected replies, shared with the
	// pump under mu.
	mu    sync.Mutex
	idle  *sync.Cond // broadcast when the queue empties
	out   *bufio.Writer
	queue replyQueue
	// scratch holds a rewritten reply on the shared connection's path.
	scratch []byte
}

func newClientSession(e *Engine, s *proxy.Session) *clientSession {
	c := &clientSession{
		e: e, s: s, proto: 2, muxIndex: e.mux.assign(), batch: newMuxBatch(),
		in:  newRequestReader(s.Conn()),
		out: bufio.NewWriterSize(s.Conn(), ioBufferSize),
	}
	c.idle = sync.NewCond(&c.mu)
	return c
}

func (c *clientSession) serve() error {
	defer c.closeUpstream()
	defer c.releaseLimit()
	stopDrain := c.watchDrain()
	defer stopDrain()
	for {
		select {
		case <-c.s.Draining():
			c.waitIdle()
			return nil
		default:
		}
		if !c.handedBack {
			served, err := c.serveInLoop()
			if err != nil {
				return err
			}
			if c.handedBack = served; served {
				continue
			}
		}
		c.handedBack = false
		cmds, err := c.in.readCommands()
		c.now = time.Now()
		if err != nil {
			if isDrainDeadline(err, c.s) {
				c.waitIdle()
				return nil
			}
			c.writeProtocolError(err)
			return err
		}
		for _, cmd := range cmds {
			if quit := c.handle(cmd); quit {
				return nil
			}
			if c.broken != nil {
				return c.broken
			}
		}
		if c.flushShared(); c.broken != nil {
			return c.broken
		}
		if c.pump != nil {
			if err := c.pump.up.w.Flush(); err != nil {
				return err
			}
		}
		c.mu.Lock()
		err = c.out.Flush()
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// watchDrain interrupts the client read when the proxy starts draining, so
// an idle session ends promptly. The deadline is re-armed until the session
// ends, since an idle timeout wrapper re-arms its own at every read.
func (c *clientSession) watchDrain() (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-c.s.Draining():
		case <-done:
			return
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			_ = c.s.Conn().SetReadDeadline(time.Now())
			select {
			case <-tick.C:
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

func isDrainDeadline(err error, s *proxy.Session) bool {
	select {
	case <-s.Draining():
		return errors.Is(err, os.ErrDeadlineExceeded)
	default:
		return false
	}
}

// writeProtocolError tells the client why its connection ends, as Redis
// does for malformed requests.
func (c *clientSession) writeProtocolError(err error) {
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) || c.s.Context().Err() != nil {
		return
	}
	c.mu.Lock()
	_, _ = c.out.Write(redcon.AppendError(nil, "ERR Protocol error: "+err.Error()))
	_ = c.out.Flush()
	c.mu.Unlock()
}

// handle treats one client command; it reports whether the session ends.
func (c *clientSession) handle(cmd command) (quit bool) {
	var buf [16]byte
	var name []byte
	if len(cmd.Args[0]) <= len(buf) {
		name = lowerInto(buf[:0], cmd.Args[0])
	}
	switch string(name) {
	case "auth":
		c.auth(cmd)
	case "hello":
		c.hello(cmd)
	case "quit":
		c.waitIdle()
		c.answer([]byte("+OK\r\n"))
		c.mu.Lock()
		_ = c.out.Flush()
		c.mu.Unlock()
		return true
	case "reset":
		c.waitIdle()
		c.closeUpstream()
		c.releaseLimit()
		if c.authed {
			// Only once: RESETs before authenticating must not push the
			// handshake deadline back.
			c.s.Deauthenticate()
		}
		c.authed, c.proto, c.inMulti, c.multiDirty, c.subs = false, 2, false, false, subscriptions{}
		c.clientName, c.libName, c.libVer = nil, nil, nil
		c.setIdleExempt()
		c.answer([]byte("+RESET\r\n"))
	case "ping":
		switch {
		case c.authed:
			c.forward(cmd)
		case len(cmd.Args) == 2:
			c.answer(redcon.AppendBulk(nil, cmd.Args[1]))
		default:
			c.answer([]byte("+PONG\r\n"))
		}
	default:
		if !c.authed {
			c.s.Refuse(proxy.ReasonNotAuthenticated, "authentication required", cmd.Raw)
			c.answer([]byte("-NOAUTH Authentication required.\r\n"))
			return false
		}
		c.forward(cmd)
	}
	return false
}

// answer gives the client a reply the proxy makes itself, in order with the
// upstream's replies to earlier commands.
func (c *clientSession) answer(reply []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.queue.empty() {
		_, _ = c.out.Write(reply)
		return
	}
	c.queue.push(pending{local: reply})
}

func (c *clientSession) answerError(msg string) { c.answer(redcon.AppendError(nil, msg)) }

// refuse counts and audits a refused command and answers it with -ERR. A
// refusal inside MULTI makes the transaction abort at EXEC, as a command
// rejected by Redis itself would.
func (c *clientSession) refuse(cmd command, r refusal) {
	c.s.Refuse(r.reason, r.message, cmd.Raw)
	if c.inMulti {
		c.multiDirty = true
	}
	c.answerError("ERR " + r.message)
}

func (c *clientSession) auth(cmd command) {
	if n := len(cmd.Args); n != 2 && n != 3 {
		c.refuse(cmd, refusal{reasonSyntax, "wrong number of arguments for 'auth' command"})
		return
	}
	if c.inMulti {
		c.refuse(cmd, refusal{reasonUnsupported, "AUTH inside MULTI is not supported by the proxy"})
		return
	}
	if c.authenticate(cmd.Args[len(cmd.Args)-1]) {
		c.answer([]byte("+OK\r\n"))
	}
}

// authenticate verifies token and binds the session to its tenant. A new
// tenant gets a fresh upstream connection, so no keys, subscriptions,
// transactions or watches of the previous one carry over. A refused token
// is answered and leaves the session as it was.
func (c *clientSession) authenticate(token []byte) bool {
	id, err := c.s.Authenticate(c.s.Context(), string(token))
	if err != nil {
		reason := string(policy.ReasonOf(err))
		if reason == "" {
			reason = "error"
		}
		c.answerError("WRONGPASS invalid token (" + reason + ")")
		return false
	}
	if !c.authed || c.scope.tenant != id.Tenant {
		c.waitIdle()
		c.closeUpstream()
		c.inMulti, c.multiDirty, c.subs = false, false, subscriptions{}
		c.clientName, c.libName, c.libVer = nil, nil, nil
		c.setIdleExempt()
		c.scope = newTenantScope(c.e.template, id.Tenant)
		c.releaseLimit()
	}
	if c.e.limiter != nil && c.limit == nil {
		c.limit = c.e.limiter.For(c.s.Context(), id.Tenant)
	}
	c.authed, c.req = true, c.s.Requests()
	return true
}

// hello handles HELLO [protover [AUTH user token] [SETNAME name]]: the
// token authenticates like AUTH; the protocol switch and name go upstream.
func (c *clientSession) hello(cmd command) {
	args := cmd.Args
	proto := 0
	var token, name []byte
	upArgs := [][]byte{args[0]}
	if len(args) > 1 {
		n, err := strconv.Atoi(string(args[1]))
		if err != nil {
			c.answerError("ERR Protocol version is not an integer or out of range")
			return
		}
		if n != 2 && n != 3 {
			c.answerError("NOPROTO unsupported protocol version")
			return
		}
		proto = n
		upArgs = append(upArgs, args[1])
		for i := 2; i < len(args); i++ {
			switch {
			case bytes.EqualFold(args[i], []byte("auth")) && i+2 < len(args):
				token = args[i+2]
				i += 2
			case bytes.EqualFold(args[i], []byte("setname")) && i+1 < len(args):
				name = args[i+1]
				i++
			default:
				c.answerError("ERR Syntax error in HELLO option '" + string(truncate(args[i])) + "'")
				return
			}
		}
	}
	if c.inMulti {
		c.refuse(cmd, refusal{reasonUnsupported, "HELLO inside MULTI is not supported by the proxy"})
		return
	}
	if token != nil && !c.authenticate(token) {
		return
	}
	if !c.authed {
		c.s.Refuse(proxy.ReasonNotAuthenticated, "authentication required", cmd.Raw)
		c.answerError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if name != nil && !validClientValue(name) {
		c.answerError("ERR Client names cannot contain spaces, newlines or special characters.")
		return
	}
	switch {
	case c.pump != nil && name != nil:
		upArgs = append(upArgs, []byte("SETNAME"), name)
	case name != nil:
		c.clientName = bytes.Clone(name)
	}
	if proto != 0 && proto != c.proto {
		// The commands before go to the shared connection of the old
		// protocol, the rest to one of the new.
		c.flushShared()
		c.proto = proto
	}
	c.plan.reset(upArgs)
	c.send(pending{hello: proto, start: c.now, req: c.req}, false)
}

// forward plans a command for the tenant and sends it upstream, or answers
// it when the plan says so.
func (c *clientSession) forward(cmd command) {
	c.e.rewriter.Load().rewriteCommand(c.scope, cmd.Args, &c.plan)
	c.forwardPlanned(cmd)
}

// handleInLoop treats a command for the event loop. It returns false,
// having done nothing, for a command whose handling may block, which the
// session's goroutine must run: AUTH, HELLO, QUIT, RESET and the commands
// that need a dedicated connection.
func (c *clientSession) handleInLoop(cmd command) bool {
	var buf [16]byte
	if len(cmd.Args[0]) <= len(buf) {
		switch string(lowerInto(buf[:0], cmd.Args[0])) {
		case "auth", "hello", "quit", "reset":
			return false
		}
	}
	p := &c.plan
	c.e.rewriter.Load().rewriteCommand(c.scope, cmd.Args, p)
	if p.binding == ownConn && p.refusal.reason == "" && p.local == nil {
		return false
	}
	c.forwardPlanned(cmd)
	return true
}

// forwardPlanned answers or sends upstream the command planned in c.plan.
func (c *clientSession) forwardPlanned(cmd command) {
	if c.limit != nil && !c.limitExempt(cmd) && !c.limit.Allow(c.now) {
		c.rateLimited(cmd)
		return
	}
	p := &c.plan
	if p.refusal.reason != "" {
		c.refuse(cmd, p.refusal)
		return
	}
	if p.local != nil {
		if c.inMulti {
			c.refuse(cmd, refusal{reasonUnsupported, "this command is not supported inside MULTI by the proxy"})
			return
		}
		c.answer(p.local)
		return
	}
	if p.binding == clientState && c.pump == nil {
		c.clientState(cmd)
		return
	}
	entry := pending{reply: p.reply, rewritten: p.rewritten(), start: c.now, req: c.req}
	var buf [16]byte
	var name []byte
	if len(cmd.Args[0]) <= len(buf) {
		name = lowerInto(buf[:0], cmd.Args[0])
	}
	switch string(name) {
	case "multi":
		if !c.inMulti {
			c.inMulti, c.multiReplies = true, c.multiReplies[:0]
		}
	case "exec":
		switch {
		case c.multiDirty:
			p.reset([][]byte{[]byte("DISCARD")})
			entry.reply = replyExecAbort
		case slices.ContainsFunc(c.multiReplies, func(k replyKind) bool { return k != replyRaw }):
			entry.reply, entry.exec = replyExec, slices.Clone(c.multiReplies)
		}
		c.inMulti, c.multiDirty = false, false
	case "discard":
		c.inMulti, c.multiDirty = false, false
	case "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe":
		if c.inMulti {
			c.refuse(cmd, refusal{reasonUnsupported, "subscribing inside MULTI is not supported by the proxy"})
			return
		}
		entry.confirmations = c.subs.expect(string(name), cmd.Args[1:])
		c.setIdleExempt()
	default:
		if c.inMulti {
			c.multiReplies = append(c.multiReplies, p.reply)
		}
	}
	c.send(entry, p.binding == ownConn)
}

// send queues the reply expectation and the planned command: in the batch
// for the shared connection, or written to the dedicated connection's
// buffer (both sent at the end of the client's batch). own moves the
// session to a dedicated connection first; a transaction or subscription
// in progress is always on one.
func (c *clientSession) send(entry pending, own bool) {
	if c.pump == nil && (own || c.inMulti || c.subs.any()) {
		if c.flushShared(); c.broken != nil {
			return
		}
		if err := c.ensureUpstream(); err != nil {
			// The client is told the command failed: no transaction or
			// subscription began.
			c.inMulti, c.multiDirty, c.subs = false, false, subscriptions{}
			c.setIdleExempt()
			c.upstreamUnavailable(err)
			return
		}
	}
	c.mu.Lock()
	c.queue.push(entry)
	c.mu.Unlock()
	if c.pump == nil {
		b := c.batch
		b.commands = c.plan.appendCommand(b.commands, c.scope.prefix)
		b.want++
		return
	}
	w := c.pump.up.w
	_, _ = w.Write(c.plan.appendCommand(w.AvailableBuffer(), c.scope.prefix))
}

// rateLimited refuses a command over the tenant's rate limit. Every one is
// counted in tenantgate_refusals_total; only the first in each second of a
// session is audited (the next audited one says how many were not), so a
// client hammering past its limit cannot turn each refused command into an
// audit line: that would flood the audit log and make refusing costlier
// than serving.
func (c *clientSession) rateLimited(cmd command) {
	if c.inMulti {
		c.multiDirty = true
	}
	c.answerError("ERR rate limit exceeded")
	if c.now.Sub(c.limitAudited) < time.Second {
		c.limitQuiet++
		c.s.CountRefusal(reasonRateLimited)
		return
	}
	msg := "rate limit exceeded"
	if c.limitQuiet > 0 {
		msg = fmt.Sprintf("rate limit exceeded (and %d more commands of this session since the last audited one)", c.limitQuiet)
	}
	c.s.Refuse(reasonRateLimited, msg, cmd.Raw)
	c.limitAudited, c.limitQuiet = c.now, 0
}

// limitExempt reports whether cmd ends a transaction: EXEC and DISCARD
// are never rate limited, so a transaction always ends when the client
// thinks it does (its commands were counted as they were queued).
func (c *clientSession) limitExempt(cmd command) bool {
	return c.inMulti && (bytes.EqualFold(cmd.Args[0], []byte("exec")) || bytes.EqualFold(cmd.Args[0], []byte("discard")))
}

// releaseLimit lets go of the tenant's rate limit (when the session ends,
// resets or changes tenant).
func (c *clientSession) releaseLimit() {
	if c.limit != nil {
		c.limit.Release()
		c.limit = nil
	}
}

func (c *clientSession) upstreamUnavailable(err error) {
	c.e.log.Warn("redis upstream unavailable", "session_id", c.s.ID(), "err", err)
	c.answerError("ERR the proxy cannot reach Redis right now")
}

// ensureUpstream opens the session's dedicated upstream connection if it
// has none, and gives it the connection name and library attributes the
// proxy kept for the client (their replies are not relayed).
func (c *clientSession) ensureUpstream() error {
	if c.pump != nil {
		return nil
	}
	up, err := c.e.upstream.dial(c.s.Context(), c.proto)
	if err != nil {
		return err
	}
	if err := c.e.loadCommandTable(up); err != nil {
		_ = up.conn.Close()
		return err
	}
	c.pump = startReplyPump(c, up)
	c.e.conns.add(stateDedicated, 1)
	for _, args := range c.keptClientState() {
		var p plan
		p.reset(args)
		c.mu.Lock()
		c.queue.push(pending{discard: true})
		c.mu.Unlock()
		_, _ = up.w.Write(p.appendCommand(up.w.AvailableBuffer(), nil))
	}
	return nil
}

// keptClientState returns the CLIENT commands that give a dedicated
// connection the name and library attributes the proxy kept.
func (c *clientSession) keptClientState() [][][]byte {
	var cmds [][][]byte
	if c.clientName != nil {
		cmds = append(cmds, [][]byte{[]byte("CLIENT"), []byte("SETNAME"), c.clientName})
	}
	if c.libName != nil {
		cmds = append(cmds, [][]byte{[]byte("CLIENT"), []byte("SETINFO"), []byte("LIB-NAME"), c.libName})
	}
	if c.libVer != nil {
		cmds = append(cmds, [][]byte{[]byte("CLIENT"), []byte("SETINFO"), []byte("LIB-VER"), c.libVer})
	}
	return cmds
}

// flushShared sends the batch of commands for the shared connection, waits
// for the replies and relays them to the client. When the connection
// cannot be reached each command is answered with an error; when it fails
// with the commands in flight, their outcome is unknown and the session
// ends (c.broken).
func (c *clientSession) flushShared() {
	b := c.batch
	if b.want == 0 {
		return
	}
	m := c.e.mux.conn(c.proto, c.muxIndex)
	l, err := m.link(c.s.Context())
	if err == nil {
		if err = l.submit(b); err != nil {
			// The link had failed before: nothing was sent; one retry on
			// a new link.
			if l, err = m.link(c.s.Context()); err == nil {
				err = l.submit(b)
			}
		}
	}
	if err != nil {
		c.e.log.Warn("redis upstream unavailable", "session_id", c.s.ID(), "err", err)
		_ = c.relayAll(nil, nil, b.want)
		b.reset()
		return
	}
	select {
	case <-b.done:
	case <-c.s.Context().Done():
		// The batch stays with the link until it is answered: the
		// session leaves it behind.
		c.batch = newMuxBatch()
		c.broken = context.Cause(c.s.Context())
		return
	}
	if b.err != nil {
		c.e.log.Warn("shared redis upstream connection failed; closing the session", "session_id", c.s.ID(), "err", b.err)
		c.batch = newMuxBatch()
		c.broken = fmt.Errorf("redis upstream: %w", b.err)
		c.s.Close(c.broken)
		c.mu.Lock()
		c.queue.clear()
		c.idle.Broadcast()
		c.mu.Unlock()
		return
	}
	err = c.relayAll(b.replies, b.ends, 0)
	b.reset()
	if err != nil {
		c.broken = err
		c.s.Close(err)
	}
}

// unavailableReply answers the commands of a batch the shared connection
// could not take.
var unavailableReply = []byte("-ERR the proxy cannot reach Redis right now\r\n")

// relayAll writes the client's version of each reply, replies[ends[i-1]:
// ends[i]], then unavailableReply for each of missing commands, each
// followed by the proxy's own replies queued behind it.
func (c *clientSession) relayAll(replies []byte, ends []int, missing int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := 0
	for _, end := range ends {
		if err := c.relay(replies[start:end]); err != nil {
			return err
		}
		start = end
	}
	for range missing {
		if err := c.relay(unavailableReply); err != nil {
			return err
		}
	}
	return nil
}

// relay writes the client's version of raw, the shared connection's reply
// to the command at the head of the queue. Called with c.mu held.
func (c *clientSession) relay(raw []byte) error {
	head := c.queue.front()
	if head.reply == replyRaw {
		_, _ = c.out.Write(raw)
	} else {
		var err error
		if c.scratch, err = rewriteReply(reuse(c.scratch), head.reply, head.exec, raw, c.scope); err != nil {
			return err
		}
		_, _ = c.out.Write(c.scratch)
	}
	c.completeHead()
	return nil
}

// completeHead completes the request at the head of the queue, then writes
// the proxy's own replies queued behind it. Called with c.mu held.
func (c *clientSession) completeHead() {
	head := c.queue.front()
	if head.req != nil {
		if head.rewritten {
			head.req.Rewritten(time.Since(head.start))
		} else {
			head.req.Forwarded(time.Since(head.start))
		}
	}
	c.queue.pop()
	for !c.queue.empty() && c.queue.front().local != nil {
		_, _ = c.out.Write(c.queue.front().local)
		c.queue.pop()
	}
	if c.queue.empty() {
		c.idle.Broadcast()
	}
}

// clientState answers CLIENT SETNAME, GETNAME and SETINFO for a session on
// a shared connection, as Redis would for the client's own connection.
func (c *clientSession) clientState(cmd command) {
	args := cmd.Args
	var buf [16]byte
	switch string(lowerInto(buf[:0], truncate(args[1]))) {
	case "setname":
		if !validClientValue(args[2]) {
			c.answerError("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		c.clientName = bytes.Clone(args[2])
		if len(c.clientName) == 0 {
			c.clientName = nil
		}
		c.answer([]byte("+OK\r\n"))
	case "getname":
		switch {
		case c.clientName != nil:
			c.answer(redcon.AppendBulk(nil, c.clientName))
		case c.proto == 3:
			c.answer([]byte("_\r\n"))
		default:
			c.answer([]byte("$-1\r\n"))
		}
	default: // setinfo
		var attr *[]byte
		switch {
		case bytes.EqualFold(args[2], []byte("lib-name")):
			attr = &c.libName
		case bytes.EqualFold(args[2], []byte("lib-ver")):
			attr = &c.libVer
		default:
			c.answerError("ERR Unrecognized option '" + string(truncate(args[2])) + "'")
			return
		}
		if !validClientValue(args[3]) {
			c.answerError("ERR " + string(bytes.ToLower(args[2])) + " cannot contain spaces, newlines or special characters.")
			return
		}
		*attr = bytes.Clone(args[3])
		c.answer([]byte("+OK\r\n"))
	}
}

// validClientValue reports whether a connection name or library attribute
// is one Redis accepts: printable ASCII without spaces.
func validClientValue(v []byte) bool {
	for _, b := range v {
		if b < '!' || b > '~' {
			return false
		}
	}
	return true
}

// waitIdle sends what is buffered upstream and waits until every expected
// reply has reached the client.
func (c *clientSession) waitIdle() {
	c.flushShared()
	if c.pump != nil {
		_ = c.pump.up.w.Flush()
	}
	c.mu.Lock()
	for !c.queue.empty() {
		c.idle.Wait()
	}
	_ = c.out.Flush()
	c.mu.Unlock()
}

func (c *clientSession) closeUpstream() {
	if c.pump != nil {
		c.pump.close()
		c.pump = nil
		c.e.conns.add(stateDedicated, -1)
	}
}

// setIdleExempt spares a subscriber the idle timeout, as Redis's own
// timeout does: a subscriber legitimately sends nothing for long stretches.
// Called from the serve goroutine before its next read, which is the one
// the exemption must apply to.
func (c *clientSession) setIdleExempt() {
	if exempt := c.subs.any(); exempt != c.idleExempt {
		c.idleExempt = exempt
		c.s.SetIdleExempt(exempt)
	}
}

// subscriptions are the names the client subscribed to, kept to know how
// many confirmations an UNSUBSCRIBE without arguments brings.
type subscriptions struct {
	channels, patterns, shard map[string]struct{}
}

// any reports whether the client holds a subscription.
func (s *subscriptions) any() bool {
	return len(s.channels)+len(s.patterns)+len(s.shard) > 0
}

// expect records a subscription command and returns how many
// confirmations Redis sends for it: one per name, or one per current
// subscription (at least one) when unsubscribing from all.
func (s *subscriptions) expect(command string, names [][]byte) int {
	var set *map[string]struct{}
	switch command {
	case "subscribe", "unsubscribe":
		set = &s.channels
	case "psubscribe", "punsubscribe":
		set = &s.patterns
	default:
		set = &s.shard
	}
	if *set == nil {
		*set = map[string]struct{}{}
	}
	if !strings.Contains(command, "unsubscribe") {
		for _, n := range names {
			(*set)[string(n)] = struct{}{}
		}
		return len(names)
	}
	if len(names) == 0 {
		n := max(len(*set), 1)
		clear(*set)
		return n
	}
	for _, n := range names {
		delete(*set, string(n))
	}
	return len(names)
}
