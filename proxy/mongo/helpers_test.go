package mongo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenantgate/tenantgate/internal/proxytest"
	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/proxy"
)

// testProxy is a tenantgate MongoDB listener in front of the test server.
type testProxy struct {
	t        *testing.T
	addr     string
	upstream string
	engine   *Engine
	listener *proxy.Listener
	env      *proxytest.Env
}

// startProxy starts a listener in mode over the test MongoDB-wire server,
// knowing the tenants "acme" and "globex".
func startProxy(t *testing.T, opts Options) *testProxy {
	t.Helper()
	return startProxyAt(t, testutil.MongoURL(t), opts)
}

// startProxyAt is startProxy over the server at upstream.
func startProxyAt(t *testing.T, upstream string, opts Options) *testProxy {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := proxytest.NewEnv(t, "acme", "globex")
	opts.Upstream, opts.Metrics = upstream, env.Deps.Metrics
	engine, err := New(ctx, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	l := env.Listen(t, proxy.ListenerConfig{Protocol: "mongo"}, engine)
	return &testProxy{t: t, addr: l.Addr().String(), upstream: upstream, engine: engine, listener: l, env: env}
}

func token(t *testing.T, tenant string) string { return proxytest.Token(t, tenant) }

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
	return p.env.Metric(p.t, name, labels...)
}
