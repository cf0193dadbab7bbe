package mongo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/tenantgate/tenantgate/policy"
	"github.com/tenantgate/tenantgate/proxy"
)

// clientSession serves one client connection: it answers the handshake and
// authentication itself and relays scoped commands over its own upstream
// connection, one request at a time.
type clientSession struct {
	e      *Engine
	s      *proxy.Session
	r      *bufio.Reader
	in     []byte
	out    []byte
	up     *upstreamConn
	nextID int32

	mu   sync.Mutex // guards busy against the drain watcher
	busy bool
}

func newClientSession(e *Engine, s *proxy.Session) *clientSession {
	return &clientSession{e: e, s: s, r: bufio.NewReaderSize(s.Conn(), readBufferSize)}
}

func (c *clientSession) serve() error {
	defer func() {
		if c.up != nil {
			_ = c.up.Close()
			c.e.upstreamOpened(-1)
		}
	}()
	go c.closeWhenDrainingIdle()
	for {
		c.setBusy(false)
		limit := c.e.maxMsg
		if c.s.Tenant() == "" {
			limit = min(limit, preAuthMaxMessage)
		}
		h, msg, err := readMessage(c.r, c.in, limit)
		if err != nil {
			return c.readFailed(err)
		}
		if !c.setBusy(true) {
			return nil // the proxy is draining: the request was not run
		}
		c.in = msg
		if err := c.handle(h, msg); err != nil {
			return err
		}
		c.in, c.out = trimBuffer(c.in), trimBuffer(c.out)
		if c.up != nil {
			c.up.in, c.up.out = trimBuffer(c.up.in), trimBuffer(c.up.out)
		}
		select {
		case <-c.s.Draining():
			return nil
		default:
		}
	}
}

// preAuthMaxMessage bounds messages before authentication: the handshake
// and a token fit easily, and an unauthenticated client cannot make the
// proxy allocate max_message_bytes per connection.
const preAuthMaxMessage = 256 << 10

// retainBytes is the largest buffer a session keeps between requests, so
// that one big message does not pin its size for the session's lifetime.
const retainBytes = 1 << 20

func trimBuffer(b []byte) []byte {
	if cap(b) > retainBytes {
		return nil
	}
	return b[:0]
}

// setBusy marks whether a request is in flight; it reports false when the
// session was closed for draining while idle.
func (c *clientSession) setBusy(b bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy = b
	return c.s.Context().Err() == nil
}

// closeWhenDrainingIdle ends the session at shutdown if no request is in
// flight; a request in flight is finished first (serve checks afterwards).
func (c *clientSession) closeWhenDrainingIdle() {
	select {
	case <-c.s.Context().Done():
	case <-c.s.Draining():
		c.mu.Lock()
		if !c.busy {
			c.s.Close(proxy.ErrShuttingDown)
		}
		c.mu.Unlock()
	}
}

func (c *clientSession) readFailed(err error) error {
	var werr *WireError
	if errors.As(err, &werr) {
		c.s.Refuse(reasonMalformed, werr.Error(), nil)
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) || c.s.Context().Err() != nil {
		return nil
	}
	return err
}

func (c *clientSession) handle(h MessageHeader, msg []byte) error {
	switch h.OpCode {
	case opMsg:
		return c.handleMsg(h, msg)
	case opQuery:
		return c.handleQuery(h, msg)
	case opCompressed:
		cerr := refuse(codeProtocolError, reasonUnsupported, "compression was not negotiated and is not supported")
		c.s.Refuse(cerr.Reason, cerr.Msg, nil)
		_ = c.write(appendOpMsg(c.out[:0], c.newID(), h.RequestID, &OpMsg{Body: cerr.Document()}))
		return cerr
	default:
		msg := fmt.Sprintf("opcode %d is not supported (only OP_MSG, and OP_QUERY for the handshake)", h.OpCode)
		c.s.Refuse(reasonUnsupported, msg, nil)
		return &WireError{Msg: msg, Fatal: true}
	}
}

func (c *clientSession) newID() int32 {
	c.nextID++
	return c.nextID
}

func (c *clientSession) write(b []byte) error {
	c.out = b
	_, err := c.s.Conn().Write(b)
	return err
}

// answer sends doc as the reply to request h, unless the client asked for
// no reply (moreToCome).
func (c *clientSession) answer(h MessageHeader, m *OpMsg, doc bsoncore.Document) error {
	if m != nil && m.MoreToCome() {
		return nil
	}
	return c.write(appendOpMsg(c.out[:0], c.newID(), h.RequestID, &OpMsg{Body: doc}))
}

// refuseAnswer audits a refusal and answers it.
func (c *clientSession) refuseAnswer(h MessageHeader, m *OpMsg, cerr *CommandError, statement []byte) error {
	c.s.Refuse(cerr.Reason, cerr.Msg, statement)
	return c.answer(h, m, cerr.Document())
}

// handleMsg answers the handshake, authentication and the other commands
// allowed before authentication itself, and scopes and relays the rest.
func (c *clientSession) handleMsg(h MessageHeader, msg []byte) error {
	start := time.Now()
	m, err := parseOpMsg(msg)
	if err != nil {
		return c.refuseAnswer(h, nil, refuse(codeFailedToParse, reasonMalformed, "%v", err), nil)
	}
	name := firstKey(m.Body)
	db, _ := m.Body.Lookup("$db").StringValueOK()
	if db == "" {
		return c.refuseAnswer(h, m, refuse(codeFailedToParse, reasonMalformed, "$db is required"), m.Body)
	}
	switch name {
	case "hello", "isMaster", "ismaster":
		return c.answer(h, m, c.hello(m.Body, name != "hello"))
	case "ping", "endSessions":
		// endSessions is answered here: server sessions expire on their own.
		return c.answer(h, m, okReply())
	case "buildInfo", "buildinfo":
		return c.answer(h, m, c.e.facts.buildInfo)
	case "saslStart":
		return c.answer(h, m, c.saslStart(m.Body, db))
	case "saslContinue":
		return c.refuseAnswer(h, m, refuse(codeAuthenticationFailed, reasonUnsupported, "no SASL conversation is in progress"), nil)
	}
	tenant := c.s.Tenant()
	if tenant == "" {
		return c.refuseAnswer(h, m, &CommandError{Code: codeUnauthorized, Reason: proxy.ReasonNotAuthenticated,
			Msg: fmt.Sprintf("command %s requires authentication", name)}, m.Body)
	}
	if c.s.Expired() {
		return c.refuseAnswer(h, m, &CommandError{Code: codeReauthenticationRequired, Reason: string(policy.ReasonExpired),
			Msg: "tenantgate: the token expired; authenticate again"}, nil)
	}
	out, plan, err := c.e.rewriter.Rewrite(&command{Name: name, DB: db, Msg: m}, tenant)
	if err != nil {
		var cerr *CommandError
		if !errors.As(err, &cerr) {
			cerr = refuse(codeFailedToParse, reasonMalformed, "%v", err)
		}
		return c.refuseAnswer(h, m, cerr, m.Body)
	}
	return c.forward(h, m, out, plan, tenant, start)
}

// forward relays a scoped command and its fixed reply. A broken upstream
// ends the session: its stream state is unknown.
func (c *clientSession) forward(h MessageHeader, m, out *OpMsg, plan *replyPlan, tenant string, start time.Time) error {
	up, err := c.upstream()
	if err != nil {
		_ = c.answer(h, m, refuse(codeHostUnreachable, "upstream", "the upstream is unreachable").Document())
		return err
	}
	// Upstream, every request is acknowledged, even one the client sent with
	// moreToCome: servers differ in whether they answer those anyway, and
	// an unexpected answer would desynchronise the stream. The client gets
	// no answer either way (see answer).
	sent := *out
	sent.Flags &^= flagMoreToCome
	reply, err := up.roundTrip(&sent)
	if err != nil {
		_ = c.answer(h, m, refuse(codeHostUnreachable, "upstream", "the upstream connection failed").Document())
		return err
	}
	body, err := c.e.rewriter.FixReply(plan, tenant, reply.Body)
	if err != nil {
		return err
	}
	c.count(m, out, start)
	return c.answer(h, m, body)
}

// count reports a relayed command as rewritten when its body changed.
func (c *clientSession) count(m, out *OpMsg, start time.Time) {
	if &m.Body[0] == &out.Body[0] && len(m.Sequences) == len(out.Sequences) {
		c.s.Requests().Forwarded(time.Since(start))
		return
	}
	c.s.Requests().Rewritten(time.Since(start))
}

// upstream returns the session's upstream connection, dialling it on first
// use. It is closed when the session ends.
func (c *clientSession) upstream() (*upstreamConn, error) {
	if c.up != nil {
		return c.up, nil
	}
	up, err := c.e.upstream.dial(c.s.Context(), c.e.maxMsg)
	if err != nil {
		// The operator's problem (the upstream is down, or no longer takes
		// the proxy's credentials), not the client's: say so above debug.
		c.e.log.Warn("mongo: upstream connection failed", "err", err)
		return nil, err
	}
	context.AfterFunc(c.s.Context(), func() { _ = up.Close() })
	c.up = up
	c.e.upstreamOpened(1)
	return up, nil
}

// handleQuery answers the legacy OP_QUERY handshake (isMaster/hello on
// admin.$cmd) with OP_REPLY; every other OP_QUERY is refused.
func (c *clientSession) handleQuery(h MessageHeader, msg []byte) error {
	q, err := parseOpQuery(msg)
	if err != nil {
		c.s.Refuse(reasonMalformed, err.Error(), nil)
		return err
	}
	query := q.Query
	if inner, ok := query.Lookup("$query").DocumentOK(); ok {
		query = inner
	}
	name := firstKey(query)
	if q.Collection == "admin.$cmd" && (name == "isMaster" || name == "ismaster" || name == "hello") {
		return c.write(appendOpReply(c.out[:0], c.newID(), h.RequestID, 0, c.hello(query, name != "hello")))
	}
	cerr := refuse(codeUnauthorized, reasonUnsupported, "OP_QUERY is only accepted for the handshake; use OP_MSG")
	c.s.Refuse(cerr.Reason, cerr.Msg, nil)
	idx, doc := bsoncore.AppendDocumentStart(nil)
	doc = bsoncore.AppendStringElement(doc, "$err", cerr.Msg)
	doc = bsoncore.AppendInt32Element(doc, "code", cerr.Code)
	doc = bsoncore.AppendDoubleElement(doc, "ok", 0)
	doc, _ = bsoncore.AppendDocumentEnd(doc, idx)
	return c.write(appendOpReply(c.out[:0], c.newID(), h.RequestID, opReplyQueryFailure, doc))
}
