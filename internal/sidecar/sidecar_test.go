package sidecar

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tenantgate/tenantgate/config"
	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/policy"
)

const testSecret = "sidecar-test-secret-0123456789abcdef"

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startSidecar parses yaml, builds the sidecar and runs it until the test ends.
func startSidecar(t *testing.T, yaml string) *Sidecar {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sc, err := New(ctx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return sc
}

func token(t *testing.T, tenant string) string {
	t.Helper()
	tok, err := policy.MintHS256([]byte(testSecret), "tenant_id", tenant, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestSuspendedTenantIsDisconnected runs the whole chain: a tenant registry
// in PostgreSQL, the Redis engine, and the suspension watcher. Suspending one
// tenant in the table closes its open session and refuses its new ones,
// while the other tenant carries on.
func TestSuspendedTenantIsDisconnected(t *testing.T) {
	pgURL := testutil.NewPostgresDB(t)
	redisURL := testutil.RedisURL(t)
	acme, globex := testutil.UniqueName("acme"), testutil.UniqueName("globex")

	ctx := context.Background()
	db, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, `CREATE SCHEMA tenantgate;
		CREATE TABLE tenantgate.tenants (id text PRIMARY KEY, slug text UNIQUE NOT NULL, active bool NOT NULL DEFAULT true)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO tenantgate.tenants VALUES ($1, $1, true), ($2, $2, true)`, acme, globex); err != nil {
		t.Fatal(err)
	}

	listen, admin := freeAddr(t), freeAddr(t)
	startSidecar(t, fmt.Sprintf(`
jwt: {secret: %s}
registry: {postgres: %q, ttl: 100ms, watch_interval: 100ms}
admin: {listen: %q}
redis: {listen: %q, upstream: %q}
`, testSecret, pgURL, admin, listen, redisURL))

	client := func(tenant string) *goredis.Client {
		c := goredis.NewClient(&goredis.Options{Addr: listen, Password: token(t, tenant), MaxRetries: -1, PoolSize: 1})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	a, g := client(acme), client(globex)
	for _, c := range []*goredis.Client{a, g} {
		if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatalf("SET through the sidecar: %v", err)
		}
	}

	if _, err := db.Exec(ctx, `UPDATE tenantgate.tenants SET active = false WHERE id = $1`, acme); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.Get(ctx, "k").Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the suspended tenant's session is still served")
		}
		time.Sleep(50 * time.Millisecond)
	}
	fresh := client(acme)
	if err := fresh.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "suspended_tenant") {
		t.Errorf("new connection of a suspended tenant: %v, want a suspended_tenant refusal", err)
	}
	if v, err := g.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Errorf("the other tenant was affected: %q, %v", v, err)
	}

	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	// go-redis retries a refused handshake (HELLO, then AUTH), so count > 0.
	series := `tenantgate_auth_failures_total{protocol="redis",reason="suspended_tenant"} `
	if !strings.Contains(string(body), series) || strings.Contains(string(body), series+"0\n") {
		t.Errorf("the refused reconnect is not in the metrics")
	}
}

// TestRedisRateLimit: redis.rate_limit (here with a shared window) reaches
// the Redis engine: the tenant's third command within its burst of 2 is
// refused and counted.
func TestRedisRateLimit(t *testing.T) {
	redisURL := testutil.RedisURL(t)
	tenant := testutil.UniqueName("rl")
	listen, admin := freeAddr(t), freeAddr(t)
	startSidecar(t, fmt.Sprintf(`
jwt: {secret: %s}
tenants: [{id: %s}]
admin: {listen: %q}
redis:
  listen: %q
  upstream: %q
  rate_limit: {requests_per_second: 1, burst: 2, shared: %q}
`, testSecret, tenant, admin, listen, redisURL, redisURL))

	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: listen, Password: token(t, tenant), Protocol: 2, MaxRetries: -1, PoolSize: 1,
		DisableIdentity: true}) // no CLIENT SETINFO: it would count too
	defer c.Close()
	for i := range 3 {
		err := c.Incr(ctx, "n").Err()
		switch {
		case i < 2 && err != nil:
			t.Fatalf("command %d within the burst: %v", i+1, err)
		case i == 2 && (err == nil || err.Error() != "ERR rate limit exceeded"):
			t.Fatalf("command 3 over the burst: %v, want the rate limit refusal", err)
		}
	}
	opts, err := goredis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	raw := goredis.NewClient(opts)
	defer raw.Close()
	for _, pattern := range []string{"t:" + tenant + ":*", "t:~ratelimit:" + tenant + ":*"} {
		for _, k := range raw.Keys(ctx, pattern).Val() {
			raw.Del(ctx, k)
		}
	}

	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `tenantgate_refusals_total{protocol="redis",reason="rate_limited"} 1`+"\n") {
		t.Errorf("the rate-limited command is not counted:\n%s", body)
	}
}
