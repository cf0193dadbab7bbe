package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tenantgate/tenantgate/policy"
)

var testSecret = []byte("proxy-test-secret-0123456789abcdef")

// lineEngine is a minimal line protocol used to drive the listener and the
// session: "AUTH <token>" authenticates; before that every other line is
// refused. After it, "REFUSE <text>" is refused, "DEFER" defers expiry by
// 300 ms, "EXEMPT" exempts the session from the idle timeout, "RESET"
// deauthenticates, "STOPREADING" sets a 100 ms read deadline as an engine
// does to interrupt a read, requests of an expired session are answered
// "ERR reauthenticate", and any other line is echoed back prefixed with the
// session's tenant.
type lineEngine struct{}

func (lineEngine) Serve(s *Session) error {
	r := bufio.NewReader(s.Conn())
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "AUTH "):
			if _, err := s.Authenticate(s.Context(), strings.TrimPrefix(line, "AUTH ")); err != nil {
				fmt.Fprintf(s.Conn(), "ERR %s\n", policy.ReasonOf(err))
				continue
			}
			fmt.Fprintln(s.Conn(), "OK")
		case s.Tenant() == "":
			s.Refuse(ReasonNotAuthenticated, "authenticate first", []byte(line))
			fmt.Fprintln(s.Conn(), "ERR not_authenticated")
		case line == "DEFER":
			s.DeferExpiry(300 * time.Millisecond)
			fmt.Fprintln(s.Conn(), "OK")
		case line == "EXEMPT":
			s.SetIdleExempt(true)
			fmt.Fprintln(s.Conn(), "OK")
		case line == "RESET":
			s.Deauthenticate()
			fmt.Fprintln(s.Conn(), "OK")
		case line == "STOPREADING":
			_ = s.Conn().SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			fmt.Fprintln(s.Conn(), "OK")
		case s.Expired():
			fmt.Fprintln(s.Conn(), "ERR reauthenticate")
		case strings.HasPrefix(line, "REFUSE "):
			s.Refuse("test_reason", "refused", []byte(line))
			fmt.Fprintln(s.Conn(), "ERR refused")
		default:
			s.Requests().Forwarded(time.Microsecond)
			fmt.Fprintf(s.Conn(), "%s:%s\n", s.Tenant(), line)
		}
	}
}

type testEnv struct {
	t        *testing.T
	reg      *prometheus.Registry
	metrics  *Metrics
	sessions *SessionTable
	audit    *bytes.Buffer
	auditMu  *sync.Mutex
	deps     Deps
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func newTestEnv(t *testing.T, tenants ...policy.Tenant) *testEnv {
	t.Helper()
	v, err := policy.NewVerifier(context.Background(), policy.VerifierConfig{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	static, err := policy.NewStaticRegistry(tenants)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, reg: prometheus.NewRegistry(), sessions: NewSessionTable(), audit: &bytes.Buffer{}, auditMu: &sync.Mutex{}}
	e.metrics = NewMetrics(e.reg, MetricsOptions{MaxTenants: 10})
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	e.deps = Deps{
		Auth: policy.NewAuthenticator(v, static), Sessions: e.sessions, Metrics: e.metrics,
		Audit: NewAuditor(log, lockedWriter{e.auditMu, e.audit}, false), Log: log,
	}
	return e
}

func (e *testEnv) auditLog() string {
	e.auditMu.Lock()
	defer e.auditMu.Unlock()
	return e.audit.String()
}

func (e *testEnv) listen(cfg ListenerConfig) *Listener {
	e.t.Helper()
	if cfg.Protocol == "" {
		cfg.Protocol = "redis"
	}
	cfg.Address = "127.0.0.1:0"
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = 100
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 5 * time.Second
	}
	l, err := Listen(cfg, lineEngine{}, e.deps)
	if err != nil {
		e.t.Fatal(err)
	}
	go func() { _ = l.Serve() }()
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = l.Shutdown(ctx)
	})
	return l
}

func (e *testEnv) token(tenant string, ttl time.Duration) string {
	e.t.Helper()
	tok, err := policy.MintHS256(testSecret, "tenant_id", tenant, ttl, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// client is a line-protocol client with a read deadline on every answer.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, l *Listener) *client {
	t.Helper()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *client) do(line string) string {
	c.t.Helper()
	if _, err := fmt.Fprintln(c.conn, line); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
	return c.read()
}

func (c *client) read() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	answer, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return strings.TrimSpace(answer)
}

// closedByServer reports whether the server closed the connection within d.
func (c *client) closedByServer(d time.Duration) bool {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	_, err := c.r.ReadByte()
	return err == io.EOF || err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
