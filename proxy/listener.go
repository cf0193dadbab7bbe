package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Engine speaks one datastore protocol. Serve handles one client session
// until it ends; the listener closes the session afterwards. Engines must
// return when s.Context() is cancelled, and should return at the next idle
// point once s.Draining() is closed.
type Engine interface {
	Serve(s *Session) error
}

// TLSMode says how a listener uses its TLS config.
type TLSMode int

const (
	// TLSDirect: the client speaks TLS from the first byte (Redis, MongoDB, Bolt).
	TLSDirect TLSMode = iota
	// TLSNegotiated: the engine upgrades in band with Session.StartTLS (PostgreSQL).
	TLSNegotiated
)

// ListenerConfig configures one protocol listener.
type ListenerConfig struct {
	Protocol         string
	Address          string
	TLS              *tls.Config // nil: plaintext only
	TLSMode          TLSMode
	MaxConnections   int           // concurrent sessions; more are closed at once
	HandshakeTimeout time.Duration // from accept to successful authentication
	IdleTimeout      time.Duration // after authentication; 0 = none
	SNISuffix        string        // see policy.Authenticator.AuthenticateSNI
}

// Deps are the shared services a listener reports to.
type Deps struct {
	Auth     Authenticator
	Sessions *SessionTable
	Metrics  *Metrics
	Audit    *Auditor
	Log      *slog.Logger
}

// Listener owns one protocol's accept loop and the lifecycle of its sessions.
type Listener struct {
	cfg    ListenerConfig
	engine Engine
	deps   Deps
	ln     net.Listener

	active   atomic.Int64
	sessions sync.WaitGroup
	draining chan struct{}
	// drained is done once draining is: Session.OnDrain.
	drained    context.Context
	endDrained context.CancelFunc
	drain      sync.Once
	open       *SessionTable // this listener's own sessions, for the forced close
}

var nextSessionID atomic.Uint64

// Listen binds cfg.Address. Binding happens here, not in Serve, so that an
// address in use is reported before anything starts.
func Listen(cfg ListenerConfig, engine Engine, deps Deps) (*Listener, error) {
	if cfg.MaxConnections <= 0 {
		return nil, errors.New("proxy: MaxConnections must be positive")
	}
	if cfg.HandshakeTimeout <= 0 {
		return nil, errors.New("proxy: HandshakeTimeout must be positive")
	}
	ln, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("%s listener on %s: %w", cfg.Protocol, cfg.Address, err)
	}
	drained, endDrained := context.WithCancel(context.Background())
	return &Listener{cfg: cfg, engine: engine, deps: deps, ln: ln, draining: make(chan struct{}),
		drained: drained, endDrained: endDrained, open: NewSessionTable()}, nil
}

// Protocol is the listener's protocol label.
func (l *Listener) Protocol() string { return l.cfg.Protocol }

// Addr is the bound address (useful with port 0).
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Serve accepts connections until Shutdown. It returns nil after Shutdown.
func (l *Listener) Serve() error {
	var backoff time.Duration
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.draining:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				l.deps.Log.Warn("accept failed; retrying", "protocol", l.cfg.Protocol, "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("%s listener: %w", l.cfg.Protocol, err)
		}
		backoff = 0
		if l.active.Add(1) > int64(l.cfg.MaxConnections) {
			l.active.Add(-1)
			l.refuseOverLimit(conn)
			continue
		}
		l.sessions.Add(1)
		go l.serveConn(conn)
	}
}

// isTemporary reports accept errors worth retrying (EMFILE and the like).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (l *Listener) refuseOverLimit(conn net.Conn) {
	client := conn.RemoteAddr().String()
	_ = conn.Close()
	l.deps.Metrics.ConnectionResult(l.cfg.Protocol, ConnLimited)
	l.deps.Metrics.Refusal(l.cfg.Protocol, "", ReasonConnectionLimit)
	l.deps.Audit.Record(AuditEvent{
		Kind: AuditRefusal, Protocol: l.cfg.Protocol, Client: client, Reason: ReasonConnectionLimit,
		Message: fmt.Sprintf("more than %d connections", l.cfg.MaxConnections),
	}, nil)
}

func (l *Listener) serveConn(conn net.Conn) {
	defer l.sessions.Done()
	defer l.active.Add(-1)
	m := l.deps.Metrics
	m.connectionsActive.WithLabelValues(l.cfg.Protocol).Inc()
	defer m.connectionsActive.WithLabelValues(l.cfg.Protocol).Dec()

	ctx, cancel := context.WithCancelCause(context.Background())
	s := &Session{
		id: nextSessionID.Add(1), l: l, client: conn.RemoteAddr().String(),
		started: time.Now(), ctx: ctx, cancel: cancel,
	}
	_ = conn.SetDeadline(s.started.Add(l.cfg.HandshakeTimeout))
	s.conn = s.wrapIdle(conn)
	l.deps.Sessions.add(s)
	l.open.add(s)
	defer func() {
		l.deps.Sessions.remove(s)
		l.open.remove(s)
		s.Close(context.Canceled)
	}()

	if l.cfg.TLS != nil && l.cfg.TLSMode == TLSDirect {
		tc := tls.Server(conn, l.cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			l.handshakeEnded(s, err)
			return
		}
		state := tc.ConnectionState()
		s.tlsState = &state
		s.setConn(s.wrapIdle(tc))
	}

	err := l.serve(s)
	s.mu.Lock()
	everAuthed := s.everAuthed
	s.mu.Unlock()
	if !everAuthed {
		l.handshakeEnded(s, err)
		return
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		l.deps.Log.Debug("session ended", "protocol", l.cfg.Protocol, "session_id", s.id, "err", err)
	}
}

// serve runs the engine on s. A panic in an engine ends that one session,
// never the process: the other tenants' sessions keep running.
func (l *Listener) serve(s *Session) (err error) {
	defer func() {
		if r := recover(); r != nil {
			l.deps.Log.Error("engine panic; session closed", "protocol", l.cfg.Protocol, "session_id", s.id,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("engine panic: %v", r)
		}
	}()
	return l.engine.Serve(s)
}

// handshakeEnded counts a session that ended before authenticating.
func (l *Listener) handshakeEnded(s *Session, err error) {
	s.mu.Lock()
	authFailed := s.authFailed
	s.mu.Unlock()
	if authFailed {
		l.deps.Metrics.ConnectionResult(l.cfg.Protocol, ConnAuthFailed)
		return
	}
	l.deps.Metrics.ConnectionResult(l.cfg.Protocol, ConnHandshakeErr)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		l.deps.Metrics.Refusal(l.cfg.Protocol, "", ReasonHandshakeTimeout)
		l.deps.Audit.Record(AuditEvent{
			Kind: AuditRefusal, Protocol: l.cfg.Protocol, Client: s.client, SessionID: s.id,
			Reason: ReasonHandshakeTimeout, Message: fmt.Sprintf("no authentication within %s", l.cfg.HandshakeTimeout),
		}, nil)
	}
}

// Shutdown stops accepting, signals open sessions to drain, waits for them
// until ctx is done, then closes what is left and waits for it to finish.
func (l *Listener) Shutdown(ctx context.Context) error {
	l.drain.Do(func() {
		close(l.draining)
		l.endDrained()
		_ = l.ln.Close()
	})
	done := make(chan struct{})
	go func() {
		l.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	l.open.mu.Lock()
	left := make([]*Session, 0, len(l.open.byID))
	for _, s := range l.open.byID {
		left = append(left, s)
	}
	l.open.mu.Unlock()
	for _, s := range left {
		s.Close(ErrShuttingDown)
	}
	<-done
	if len(left) > 0 {
		return fmt.Errorf("%s listener: closed %d sessions at the drain deadline", l.cfg.Protocol, len(left))
	}
	return nil
}
