package mongo

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/policy"
	"github.com/tenantgate/tenantgate/proxy"
)

var testSecret = []byte("mongo-test-secret-0123456789abcdef")

// testProxy is a tenantgate MongoDB listener in front of the test server.
type testProxy struct {
	t        *testing.T
	addr     string
	upstream string
	engine   *Engine
	listener *proxy.Listener
	registry *prometheus.Registry
}

// startProxy starts a listener in mode over the test MongoDB-wire server,
// knowing the tenants "acme" and "globex".
func startProxy(t *testing.T, opts Options) *testProxy {
	t.Helper()
	upstream := testutil.MongoURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := policy.NewVerifier(ctx, policy.VerifierConfig{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	reg, err := policy.NewStaticRegistry([]policy.Tenant{{ID: "acme", Active: true}, {ID: "globex", Active: true}})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	promReg := prometheus.NewRegistry()
	deps := proxy.Deps{
		Auth: policy.NewAuthenticator(v, reg), Sessions: proxy.NewSessionTable(),
		Metrics: proxy.NewMetrics(promReg, proxy.MetricsOptions{MaxTenants: 10}),
		Audit:   proxy.NewAuditor(log, nil, false), Log: log,
	}
	opts.Upstream, opts.Metrics = upstream, deps.Metrics
	engine, err := New(ctx, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	l, err := proxy.Listen(proxy.ListenerConfig{
		Protocol: "mongo", Address: "127.0.0.1:0", MaxConnections: 100, HandshakeTimeout: 10 * time.Second,
	}, engine, deps)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = l.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.Shutdown(ctx)
	})
	return &testProxy{t: t, addr: l.Addr().String(), upstream: upstream, engine: engine, listener: l, registry: promReg}
}

func token(t *testing.T, tenant string) string {
	t.Helper()
	tok, err := policy.MintHS256(testSecret, "tenant_id", tenant, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// client connects the official driver to the proxy as tenant, with PLAIN.
func (p *testProxy) client(tenant string) *mongo.Client {
	p.t.Helper()
	opts := options.Client().ApplyURI("mongodb://" + p.addr + "/").
		SetAuth(options.Credential{AuthMechanism: "PLAIN", AuthSource: "$external", Username: tenant, Password: token(p.t, tenant)}).
		SetServerSelectionTimeout(5 * time.Second)
	return connect(p.t, opts)
}

// direct connects the driver to the upstream itself, to check what was
// stored where.
func (p *testProxy) direct() *mongo.Client {
	p.t.Helper()
	return connect(p.t, options.Client().ApplyURI(p.upstream).SetServerSelectionTimeout(5*time.Second))
}

func connect(t *testing.T, opts *options.ClientOptions) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Disconnect(ctx)
	})
	return c
}

// uniqueDB is a database name no other test run uses, without the
// template's separator.
func uniqueDB() string {
	return strings.ReplaceAll(testutil.UniqueName("tg"), "_", "")
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantCode asserts err is a server error with code.
func wantCode(t *testing.T, err error, code int32) {
	t.Helper()
	var se mongo.ServerError
	if err == nil {
		t.Fatalf("want error code %d, got success", code)
	}
	if !asServer(err, &se) || !se.HasErrorCode(int(code)) {
		t.Fatalf("want error code %d, got %v", code, err)
	}
}

func asServer(err error, se *mongo.ServerError) bool { return errors.As(err, se) }

// metric returns the value of the series named by name and label=value
// pairs, or 0 when it does not exist.
func (p *testProxy) metric(name string, labels ...string) float64 {
	p.t.Helper()
	families, err := p.registry.Gather()
	if err != nil {
		p.t.Fatal(err)
	}
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
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}
