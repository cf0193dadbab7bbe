package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenantgate/tenantgate/policy"
)

// Causes a session is ended with, readable with context.Cause(s.Context()).
var (
	ErrTokenExpired    = errors.New("the token expired")
	ErrTenantSuspended = errors.New("the tenant was suspended")
	ErrShuttingDown    = errors.New("the proxy is shutting down")
	ErrNoTLS           = errors.New("TLS is not configured on this listener")
)

// Authenticator turns a token into an identity. *policy.Authenticator is one.
type Authenticator interface {
	AuthenticateSNI(ctx context.Context, token, serverName, suffix string) (policy.Identity, error)
}

// Session is one client connection and the identity it proved.
type Session struct {
	id      uint64
	l       *Listener
	client  string
	started time.Time
	ctx     context.Context
	cancel  context.CancelCauseFunc

	conn     net.Conn // replaced by StartTLS
	tlsState *tls.ConnectionState

	mu          sync.Mutex
	identity    policy.Identity
	authed      bool
	everAuthed  bool
	authFailed  bool
	expiry      *time.Timer
	expiryGrace time.Duration // > 0: engine re-authenticates in place, see DeferExpiry
	idleExempt  bool
	req         *RequestMetrics

	// idle mirrors authed and idleExempt for idleConn's hot path.
	idle atomic.Int32

	expired atomic.Bool
	closed  atomic.Bool
}

// ID is the session's process-unique number, also used in logs and audit.
func (s *Session) ID() uint64 { return s.id }

// Protocol is the listener's protocol label.
func (s *Session) Protocol() string { return s.l.cfg.Protocol }

// Client is the client's network address.
func (s *Session) Client() string { return s.client }

// Conn is the client connection, TLS-wrapped when TLS is in use; a
// placeholder while the engine serves the socket itself (DetachSocket).
func (s *Session) Conn() net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

// Context is cancelled when the session must end; context.Cause says why.
func (s *Session) Context() context.Context { return s.ctx }

// Draining is closed when the proxy is shutting down: engines should end the
// session at the next point where no request is in flight.
func (s *Session) Draining() <-chan struct{} { return s.l.draining }

// OnDrain calls f, in a goroutine of its own, once the listener starts
// draining; stop cancels that if it has not started. Unlike waiting on
// Draining, it costs no goroutine until then.
func (s *Session) OnDrain(f func()) (stop func() bool) { return context.AfterFunc(s.l.drained, f) }

// TLSAvailable reports whether StartTLS can succeed.
func (s *Session) TLSAvailable() bool { return s.l.cfg.TLS != nil }

// IsTLS reports whether the client connection is encrypted.
func (s *Session) IsTLS() bool { return s.tlsState != nil }

// StartTLS upgrades the client connection in band (PostgreSQL's SSLRequest).
// The handshake is bounded by the handshake deadline.
func (s *Session) StartTLS() error {
	if s.l.cfg.TLS == nil {
		return ErrNoTLS
	}
	tc := tls.Server(s.conn, s.l.cfg.TLS)
	if err := tc.HandshakeContext(s.ctx); err != nil {
		return err
	}
	state := tc.ConnectionState()
	s.tlsState = &state
	s.setConn(s.wrapIdle(tc))
	return nil
}

// setConn replaces the client connection.
func (s *Session) setConn(c net.Conn) {
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
}

// Identity returns the proven identity; ok is false before authentication.
func (s *Session) Identity() (id policy.Identity, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.identity, s.authed
}

// Tenant returns the proven tenant id, or "" before authentication.
func (s *Session) Tenant() string {
	id, _ := s.Identity()
	return id.Tenant
}

// Authenticate verifies token and binds the session to its tenant. It may be
// called again to re-authenticate (Redis AUTH, Bolt LOGON, Mongo
// re-authentication), possibly as another tenant: the engine must then drop
// any state of the previous tenant. A refused token is counted and audited,
// and the session keeps its previous identity (none on first use).
func (s *Session) Authenticate(ctx context.Context, token string) (policy.Identity, error) {
	serverName := ""
	if s.tlsState != nil {
		serverName = s.tlsState.ServerName
	}
	id, err := s.l.deps.Auth.AuthenticateSNI(ctx, token, serverName, s.l.cfg.SNISuffix)
	if err != nil {
		reason := string(policy.ReasonOf(err))
		if reason == "" {
			reason = "error"
		}
		s.mu.Lock()
		s.authFailed = !s.authed
		tenant := s.identity.Tenant
		s.mu.Unlock()
		s.l.deps.Metrics.AuthFailure(s.Protocol(), reason)
		s.l.deps.Audit.Record(AuditEvent{
			Kind: AuditAuthFailure, Protocol: s.Protocol(), Tenant: tenant, Client: s.client,
			SessionID: s.id, Reason: reason, Message: err.Error(),
		}, nil)
		return policy.Identity{}, err
	}

	s.mu.Lock()
	first, wasAuthed := !s.everAuthed, s.authed
	s.identity, s.authed, s.everAuthed, s.authFailed = id, true, true, false
	s.syncIdleLocked()
	s.req = s.l.deps.Metrics.ForSession(s.Protocol(), id.Tenant)
	s.armExpiryLocked(time.Until(id.ExpiresAt))
	s.expired.Store(false)
	s.mu.Unlock()

	s.l.deps.Sessions.bind(s, id.Tenant)
	if !wasAuthed {
		// The handshake is over: lift its deadline; idle timeouts take over.
		_ = s.Conn().SetDeadline(time.Time{})
	}
	if first {
		s.l.deps.Metrics.ConnectionResult(s.Protocol(), ConnAccepted)
	}
	return id, nil
}

// armExpiryLocked (re)starts the expiry timer: at expiry the session is
// closed, or, after DeferExpiry, marked expired and closed only if it has
// not re-authenticated within the grace period.
func (s *Session) armExpiryLocked(d time.Duration) {
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.expiry = time.AfterFunc(d, func() {
		s.mu.Lock()
		grace := s.expiryGrace
		if grace > 0 && !s.expired.Load() {
			s.expired.Store(true)
			s.expiry = time.AfterFunc(grace, func() { s.Close(ErrTokenExpired) })
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.Close(ErrTokenExpired)
	})
}

// DeferExpiry is for engines whose protocol lets a client re-authenticate in
// place (MongoDB's ReauthenticationRequired, Bolt's LOGOFF/LOGON, Redis AUTH):
// when the token expires the session is not closed at once but marked
// Expired, and the engine must refuse every request with its protocol's
// re-authentication error until Authenticate succeeds again. A session that
// has not re-authenticated within grace is closed all the same.
func (s *Session) DeferExpiry(grace time.Duration) {
	s.mu.Lock()
	s.expiryGrace = grace
	s.mu.Unlock()
}

// Expired reports whether the token expired and the session awaits
// re-authentication (only after DeferExpiry). Cheap enough for every request.
func (s *Session) Expired() bool { return s.expired.Load() }

// Deauthenticate drops the session's identity (Redis RESET): the session
// leaves its tenant's list, its expiry timer stops, and Identity reports no
// identity until Authenticate succeeds again, which it must do within the
// handshake timeout, as at the start.
func (s *Session) Deauthenticate() {
	s.mu.Lock()
	s.identity, s.authed, s.req = policy.Identity{}, false, nil
	s.syncIdleLocked()
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
	s.expired.Store(false)
	s.mu.Unlock()
	s.l.deps.Sessions.unbind(s)
	// Unauthenticated again: the client gets a new handshake deadline.
	_ = s.Conn().SetDeadline(time.Now().Add(s.l.cfg.HandshakeTimeout))
}

// SetIdleExempt exempts the session from the listener's idle timeout while
// exempt is true: a pub/sub subscriber, say, legitimately sends nothing for
// long stretches (Redis's own timeout spares subscribers too).
func (s *Session) SetIdleExempt(exempt bool) {
	s.mu.Lock()
	s.idleExempt = exempt
	s.syncIdleLocked()
	s.mu.Unlock()
}

// Requests returns the session's per-request metrics. Engines call it after
// Authenticate and keep the result for the hot path.
func (s *Session) Requests() *RequestMetrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.req
}

// Refuse counts and audits a refused request. reason is a short stable code
// (a metric label value); message is what the client was told; statement is
// the refused request (digested, and kept only when audit.statements is on).
func (s *Session) Refuse(reason, message string, statement []byte) {
	tenant := s.countRefusal(reason)
	s.l.deps.Audit.Record(AuditEvent{
		Kind: AuditRefusal, Protocol: s.Protocol(), Tenant: tenant, Client: s.client,
		SessionID: s.id, Reason: reason, Message: message,
	}, statement)
}

// CountRefusal counts a refused request like Refuse but records no audit
// event. It is for refusals an engine audits in summary, such as a client
// hammering past its rate limit, where an event per request would flood the
// audit log.
func (s *Session) CountRefusal(reason string) { s.countRefusal(reason) }

func (s *Session) countRefusal(reason string) (tenant string) {
	tenant = s.Tenant()
	m := s.l.deps.Metrics
	m.Refusal(s.Protocol(), tenant, reason)
	m.requestsTotal.WithLabelValues(m.labels(s.Protocol(), OutcomeRefused, m.tenants.label(tenant))...).Inc()
	return tenant
}

// Close ends the session: its context is cancelled with cause and the client
// connection closed. Closing for a reason other than the client leaving
// (expiry, suspension, shutdown) is audited.
func (s *Session) Close(cause error) {
	if !s.closed.CompareAndSwap(false, true) {
		return
	}
	s.cancel(cause)
	s.mu.Lock()
	if s.expiry != nil {
		s.expiry.Stop()
	}
	tenant, conn := s.identity.Tenant, s.conn
	s.mu.Unlock()
	if errors.Is(cause, ErrTokenExpired) || errors.Is(cause, ErrTenantSuspended) {
		s.l.deps.Audit.Record(AuditEvent{
			Kind: AuditSessionEnd, Protocol: s.Protocol(), Tenant: tenant, Client: s.client,
			SessionID: s.id, Reason: reasonOfCause(cause), Message: cause.Error(),
		}, nil)
	}
	_ = conn.Close()
}

func reasonOfCause(cause error) string {
	switch {
	case errors.Is(cause, ErrTokenExpired):
		return string(policy.ReasonExpired)
	case errors.Is(cause, ErrTenantSuspended):
		return string(policy.ReasonSuspendedTenant)
	}
	return "closed"
}

// Idle timeout states, as stored in Session.idle.
const (
	idleOff    int32 = iota // unauthenticated: the handshake deadline applies instead
	idleOn                  // authenticated: the idle timeout applies
	idleExempt              // authenticated but exempt (SetIdleExempt)
)

func (s *Session) syncIdleLocked() {
	switch {
	case !s.authed:
		s.idle.Store(idleOff)
	case s.idleExempt:
		s.idle.Store(idleExempt)
	default:
		s.idle.Store(idleOn)
	}
}

// wrapIdle applies the listener's idle timeout to reads after
// authentication. Without an idle timeout the connection is used as is.
func (s *Session) wrapIdle(c net.Conn) net.Conn {
	if s.l.cfg.IdleTimeout <= 0 {
		return c
	}
	return &idleConn{Conn: c, s: s, timeout: s.l.cfg.IdleTimeout}
}

// idleConn ends a session whose client sends nothing for the idle timeout.
// Before authentication the handshake deadline applies instead. A read
// deadline the engine sets itself (to stop a read while draining, say) is
// kept: each read waits until the earlier of it and the idle deadline.
type idleConn struct {
	net.Conn
	s        *Session
	timeout  time.Duration
	external atomic.Int64 // the engine's read deadline in Unix nanoseconds; 0 = none
}

func (c *idleConn) Read(p []byte) (int, error) {
	if state := c.s.idle.Load(); state != idleOff {
		var d time.Time
		if state == idleOn {
			d = time.Now().Add(c.timeout)
		}
		if ext := c.external.Load(); ext != 0 && (d.IsZero() || ext < d.UnixNano()) {
			d = time.Unix(0, ext)
		}
		if err := c.Conn.SetReadDeadline(d); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

func (c *idleConn) SetReadDeadline(t time.Time) error {
	c.setExternal(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *idleConn) SetDeadline(t time.Time) error {
	c.setExternal(t)
	return c.Conn.SetDeadline(t)
}

func (c *idleConn) setExternal(t time.Time) {
	if t.IsZero() {
		c.external.Store(0)
		return
	}
	c.external.Store(t.UnixNano())
}

// SessionTable lists the open sessions by tenant, so that a suspended
// tenant's sessions and, on shutdown, all sessions can be closed.
type SessionTable struct {
	mu       sync.Mutex
	byID     map[uint64]*Session
	byTenant map[string]map[uint64]*Session
	tenantOf map[uint64]string
}

// NewSessionTable returns an empty table.
func NewSessionTable() *SessionTable {
	return &SessionTable{
		byID:     map[uint64]*Session{},
		byTenant: map[string]map[uint64]*Session{},
		tenantOf: map[uint64]string{},
	}
}

func (t *SessionTable) add(s *Session) {
	t.mu.Lock()
	t.byID[s.id] = s
	t.mu.Unlock()
}

func (t *SessionTable) bind(s *Session, tenant string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, open := t.byID[s.id]; !open {
		return
	}
	t.unbindLocked(s.id)
	set := t.byTenant[tenant]
	if set == nil {
		set = map[uint64]*Session{}
		t.byTenant[tenant] = set
	}
	set[s.id] = s
	t.tenantOf[s.id] = tenant
}

func (t *SessionTable) unbind(s *Session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unbindLocked(s.id)
}

func (t *SessionTable) remove(s *Session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byID, s.id)
	t.unbindLocked(s.id)
}

func (t *SessionTable) unbindLocked(id uint64) {
	old, ok := t.tenantOf[id]
	if !ok {
		return
	}
	delete(t.tenantOf, id)
	delete(t.byTenant[old], id)
	if len(t.byTenant[old]) == 0 {
		delete(t.byTenant, old)
	}
}

// Len returns the number of open sessions, authenticated or not.
func (t *SessionTable) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// Tenants returns the tenants that have at least one open session.
func (t *SessionTable) Tenants() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.byTenant))
	for tenant := range t.byTenant {
		out = append(out, tenant)
	}
	return out
}

// CloseTenant closes every session of tenant with cause and returns how many.
func (t *SessionTable) CloseTenant(tenant string, cause error) int {
	t.mu.Lock()
	victims := make([]*Session, 0, len(t.byTenant[tenant]))
	for _, s := range t.byTenant[tenant] {
		victims = append(victims, s)
	}
	t.mu.Unlock()
	for _, s := range victims {
		s.Close(cause)
	}
	return len(victims)
}
