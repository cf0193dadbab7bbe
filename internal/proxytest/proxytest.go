// Package proxytest runs a protocol engine behind a real proxy.Listener for
// the engines' tests: tokens are real JWTs checked by the real policy
// verifier against a static registry of active tenants, and the metrics and
// the audit log are real and readable by the test. Only the datastore behind
// the engine is the test's own business.
package proxytest

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

// Secret is the HS256 secret of the tokens Token mints.
var Secret = []byte("proxytest-secret-0123456789abcdef0123")

// Env is the shared services of one test's listeners.
type Env struct {
	Deps     proxy.Deps
	Registry *prometheus.Registry // holds Deps.Metrics
	audit    lockedBuffer
}

// NewEnv returns services whose registry knows tenants, all active.
func NewEnv(t testing.TB, tenants ...string) *Env {
	t.Helper()
	entries := make([]policy.Tenant, len(tenants))
	for i, id := range tenants {
		entries[i] = policy.Tenant{ID: id, Slug: id, Active: true}
	}
	return NewEnvWith(t, entries)
}

// NewEnvWith returns services whose registry holds entries as given, so a
// test can have suspended tenants.
func NewEnvWith(t testing.TB, entries []policy.Tenant) *Env {
	t.Helper()
	v, err := policy.NewVerifier(context.Background(), policy.VerifierConfig{Secret: Secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	static, err := policy.NewStaticRegistry(entries)
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{Registry: prometheus.NewRegistry()}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	e.Deps = proxy.Deps{
		Auth: policy.NewAuthenticator(v, static), Sessions: proxy.NewSessionTable(),
		Metrics: proxy.NewMetrics(e.Registry, proxy.MetricsOptions{MaxTenants: 100}),
		Audit:   proxy.NewAuditor(log, &e.audit, false), Log: log,
	}
	return e
}

// Listen binds a listener serving engine until the test ends. Address,
// MaxConnections and HandshakeTimeout default to 127.0.0.1:0, 200 and 10 s.
func (e *Env) Listen(t testing.TB, cfg proxy.ListenerConfig, engine proxy.Engine) *proxy.Listener {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = 200
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	l, err := proxy.Listen(cfg, engine, e.Deps)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = l.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = l.Shutdown(ctx)
	})
	return l
}

// AuditLog is everything audited so far, as JSON lines.
func (e *Env) AuditLog() string { return e.audit.String() }

// Metric returns the value of the counter or gauge series named by name and
// label=value pairs (the other labels may be anything), summed over the
// matching series; 0 when none matches.
func (e *Env) Metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	families, err := e.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// Token mints a token for tenant valid for an hour.
func Token(t testing.TB, tenant string) string {
	t.Helper()
	return TokenFor(t, tenant, time.Hour)
}

// TokenFor mints a token for tenant valid for ttl.
func TokenFor(t testing.TB, tenant string, ttl time.Duration) string {
	t.Helper()
	tok, err := policy.MintHS256(Secret, "tenant_id", tenant, ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// lockedBuffer is an io.Writer safe for the auditor's concurrent writes.
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
