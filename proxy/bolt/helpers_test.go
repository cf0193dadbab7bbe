package bolt

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tenantgate/tenantgate/policy"
	"github.com/tenantgate/tenantgate/proxy"
)

var testSecret = []byte("bolt-test-secret-0123456789abcdef")

// testProxy is a Bolt listener in front of a scripted peer.
type testProxy struct {
	t        testing.TB
	peer     *scriptedPeer
	addr     string
	audit    *lockedBuffer
	listener *proxy.Listener
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startProxy(t testing.TB, peer *scriptedPeer, opts Options) *testProxy {
	t.Helper()
	v, err := policy.NewVerifier(context.Background(), policy.VerifierConfig{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	reg, err := policy.NewStaticRegistry([]policy.Tenant{{ID: "acme", Active: true}, {ID: "globex", Active: true}})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	audit := &lockedBuffer{}
	deps := proxy.Deps{
		Auth: policy.NewAuthenticator(v, reg), Sessions: proxy.NewSessionTable(),
		Metrics: proxy.NewMetrics(prometheus.NewRegistry(), proxy.MetricsOptions{MaxTenants: 10}),
		Audit:   proxy.NewAuditor(log, audit, false), Log: log,
	}
	// Bind first: ROUTE replies advertise the listener's own address.
	deferred := &deferredEngine{}
	l, err := proxy.Listen(proxy.ListenerConfig{
		Protocol: "bolt", Address: "127.0.0.1:0", MaxConnections: 50, HandshakeTimeout: 5 * time.Second,
	}, deferred, deps)
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	opts.Upstream = peer.url()
	opts.Username, opts.Password = peer.username, peer.password
	if opts.Advertise == "" {
		opts.Advertise = addr
	}
	if deferred.e, err = New(opts); err != nil {
		t.Fatal(err)
	}
	go func() { _ = l.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = l.Shutdown(ctx)
	})
	return &testProxy{t: t, peer: peer, addr: addr, audit: audit, listener: l}
}

// deferredEngine lets the listener bind before the engine exists.
type deferredEngine struct{ e *Engine }

func (d *deferredEngine) Serve(s *proxy.Session) error { return d.e.Serve(s) }

func (p *testProxy) token(tenant string) string {
	p.t.Helper()
	tok, err := policy.MintHS256(testSecret, "tenant_id", tenant, time.Hour, time.Now())
	if err != nil {
		p.t.Fatal(err)
	}
	return tok
}
