package bolt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/tenantgate/tenantgate/proxy"
)

// Refusal reasons of this engine (metric label values), besides the
// cypher package's.
const (
	reasonDatabase      = "bolt_database"
	reasonImpersonation = "bolt_impersonation"
	reasonProtocol      = "bolt_protocol"
)

// errNoVersion ends a session whose client and upstream share no version.
var errNoVersion = errors.New("bolt: no protocol version in common")

// clientSession is one client connection and its own upstream connection.
//
// Two goroutines share it. The reader takes client messages in order,
// scopes or refuses them, forwards what is allowed upstream, and queues one
// reply entry per message. The writer takes the entries in the same order
// and writes the client's replies: the upstream's (filtered) or the one the
// reader made. Replies thus reach the client in request order, as Bolt
// requires, even when a refusal sits between forwarded messages.
type clientSession struct {
	e       *Engine
	s       *proxy.Session
	client  net.Conn
	up      net.Conn
	version version

	fromClient   *messageReader
	fromUpstream *messageReader
	replies      chan reply
	writerDone   chan struct{}

	// Reader state.
	helloDone bool
	loggedOn  bool
	failed    bool   // a refusal put the client in Bolt's FAILED state
	tenant    string // the tenant of the current login
	label     string // its label (label mode)
	tenantDB  string // its database (database mode)

	mu        sync.Mutex
	databases []string // database names the upstream reported for this session
	// What a drain waits for: replies not yet written, an explicit
	// transaction, an auto-commit result not fully pulled.
	outstanding int
	inTx        bool
	streamOpen  bool
	replied     chan struct{} // signalled after each reply is written
}

// reply is the client's reply to one request.
type reply struct {
	local  []byte // a message the proxy made; nil: read the upstream's reply
	label  string // the tenant label to hide in the upstream's reply
	route  bool   // the upstream's reply is a routing table
	learn  bool   // the reply may name the home database
	stream bool   // the reply to PULL or DISCARD: has_more says if the result is still open
}

func newClientSession(e *Engine, s *proxy.Session) *clientSession {
	return &clientSession{e: e, s: s, client: s.Conn()}
}

func (c *clientSession) serve() error {
	offered, err := readProposals(c.client)
	if err != nil {
		return err
	}
	if len(offered) == 0 {
		_, _ = c.client.Write([]byte{0, 0, 0, 0})
		return errNoVersion
	}
	up, err := c.e.dial(c.s.Context())
	if err != nil {
		c.e.log.Warn("bolt upstream unreachable", "session_id", c.s.ID(), "err", err)
		_, _ = c.client.Write([]byte{0, 0, 0, 0})
		return err
	}
	c.up = up
	defer up.Close()
	// The session's end (expiry, suspension, shutdown) unblocks upstream I/O.
	stop := context.AfterFunc(c.s.Context(), func() { _ = up.Close() })
	defer stop()
	_ = up.SetDeadline(time.Now().Add(c.e.dialTimeout))
	if c.version, err = negotiateUpstream(up, offered); err != nil {
		c.e.log.Warn("bolt version negotiation failed", "session_id", c.s.ID(), "offered", fmt.Sprint(offered), "err", err)
		_, _ = c.client.Write([]byte{0, 0, 0, 0})
		return err
	}
	_ = up.SetDeadline(time.Time{})
	if _, err := c.client.Write(versionReply(c.version)); err != nil {
		return err
	}

	c.fromClient = newMessageReader(c.client, c.e.maxMessage)
	c.fromUpstream = newMessageReader(up, c.e.maxMessage)
	c.replies = make(chan reply, 256)
	c.writerDone = make(chan struct{})
	c.replied = make(chan struct{}, 1)
	go c.writeReplies()
	go c.closeWhenIdle()

	flush, err := c.readRequests()
	if !flush {
		_ = up.Close() // unblocks the writer
	}
	close(c.replies)
	<-c.writerDone
	return err
}

// negotiateUpstream proposes the client's versions to the upstream and
// returns its choice.
func negotiateUpstream(up net.Conn, offered []version) (version, error) {
	if _, err := up.Write(proposals(offered)); err != nil {
		return version{}, fmt.Errorf("bolt upstream handshake: %w", err)
	}
	var answer [4]byte
	if _, err := io.ReadFull(up, answer[:]); err != nil {
		return version{}, fmt.Errorf("bolt upstream handshake: %w", err)
	}
	v, ok := parseVersionReply(answer[:])
	if !ok || !slices.Contains(offered, v) {
		return version{}, errNoVersion
	}
	return v, nil
}
