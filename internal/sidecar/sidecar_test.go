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
