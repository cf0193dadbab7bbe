package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tenantgate/tenantgate/internal/proxytest"
	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/proxy"
)

// testProxy is a Redis listener with this engine in front of the test
// Redis server, and a direct client to that server to check what really
// landed there.
type testProxy struct {
	t        testing.TB
	addr     string
	listener *proxy.Listener
	engine   *Engine
	upstream *goredis.Client
	env      *proxytest.Env
}

func (p *testProxy) auditLog() string { return p.env.AuditLog() }

// metric is the value of a redis series of name with label=value pairs.
func (p *testProxy) metric(name string, labels ...string) float64 {
	p.t.Helper()
	return p.env.Metric(p.t, name, append([]string{"protocol", "redis"}, labels...)...)
}

// startProxy serves the tenants (all active) through a new listener.
func startProxy(t *testing.T, tenants ...string) *testProxy {
	t.Helper()
	return startProxyWith(t, proxy.ListenerConfig{}, tenants...)
}

// startProxyWith is startProxy with listener settings (timeouts) of cfg.
func startProxyWith(t *testing.T, cfg proxy.ListenerConfig, tenants ...string) *testProxy {
	t.Helper()
	return startProxyOpts(t, cfg, Options{}, tenants...)
}

// startProxyOpts is startProxyWith with engine options (the upstream, when
// eopts has none, and the metrics are set here).
func startProxyOpts(t testing.TB, cfg proxy.ListenerConfig, eopts Options, tenants ...string) *testProxy {
	t.Helper()
	ctx := context.Background()
	env := proxytest.NewEnv(t, tenants...)
	if eopts.Upstream == "" {
		eopts.Upstream = testutil.RedisURL(t)
	}
	eopts.Metrics = env.Deps.Metrics
	engine, err := New(ctx, eopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = engine.Close() })
	p := &testProxy{t: t, engine: engine, env: env}
	cfg.Protocol = "redis"
	p.listener = p.env.Listen(t, cfg, engine)
	p.addr = p.listener.Addr().String()
	opts, err := goredis.ParseURL(eopts.Upstream)
	if err != nil {
		t.Fatal(err)
	}
	p.upstream = goredis.NewClient(opts)
	t.Cleanup(func() {
		for _, id := range tenants {
			deleteUpstreamKeys(p.upstream, newTenantScope(DefaultKeyPrefix, id))
		}
		_ = p.upstream.Close()
	})
	return p
}

func deleteUpstreamKeys(c *goredis.Client, sc *tenantScope) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, string(sc.pattern([]byte("*"))), 1000).Iterator()
	for iter.Next(ctx) {
		c.Unlink(ctx, iter.Val())
	}
}

// tenants returns n tenant ids no other test run uses.
func tenants(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = testutil.UniqueName("t")
	}
	return out
}

func (p *testProxy) token(tenant string) string { return proxytest.Token(p.t, tenant) }

// client is a go-redis client (RESP3, HELLO 3 AUTH) of tenant through the
// proxy.
func (p *testProxy) client(tenant string) *goredis.Client {
	p.t.Helper()
	c := goredis.NewClient(&goredis.Options{
		Addr: p.addr, Password: p.token(tenant), Protocol: 3, PoolSize: 4, MaxRetries: -1,
		ReadTimeout: 10 * time.Second, DisableIdentity: true,
	})
	p.t.Cleanup(func() { _ = c.Close() })
	return c
}

// client2 is a RESP2 client of tenant (plain AUTH, no HELLO).
func (p *testProxy) client2(tenant string) *goredis.Client {
	p.t.Helper()
	c := goredis.NewClient(&goredis.Options{
		Addr: p.addr, Password: p.token(tenant), Protocol: 2, PoolSize: 4, MaxRetries: -1,
		ReadTimeout: 10 * time.Second, DisableIdentity: true,
	})
	p.t.Cleanup(func() { _ = c.Close() })
	return c
}

// upstreamKeys lists the keys under tenant's prefix on the upstream.
func (p *testProxy) upstreamKeys(tenant string) []string {
	p.t.Helper()
	ctx := context.Background()
	var keys []string
	iter := p.upstream.Scan(ctx, 0, string(newTenantScope(DefaultKeyPrefix, tenant).pattern([]byte("*"))), 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		p.t.Fatal(err)
	}
	return keys
}

func must[T any](t testing.TB) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// session is a raw RESP2 connection of tenant, authenticated.
func (p *testProxy) session(t *testing.T, tenant string) *rawConn {
	t.Helper()
	c := dialRaw(t, p)
	if got := c.do("AUTH", p.token(tenant)); got != "+OK\r\n" {
		t.Fatalf("AUTH = %q", got)
	}
	return c
}
