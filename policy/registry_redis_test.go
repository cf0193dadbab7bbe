package policy

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tenantgate/tenantgate/internal/testutil"
)

// newRedisCache returns a cache on the test server and a raw client to
// inspect it. Tests share the server, so they use UniqueName'd tenants and
// delete their keys.
func newRedisCache(t *testing.T, ttl time.Duration) (*RedisCache, *redis.Client) {
	t.Helper()
	url := testutil.RedisURL(t)
	c, err := NewRedisCache(url, ttl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	raw := redis.NewClient(opts)
	t.Cleanup(func() { _ = raw.Close() })
	return c, raw
}

func cleanupKeys(t *testing.T, raw *redis.Client, keys ...string) {
	t.Cleanup(func() { _ = raw.Del(t.Context(), keys...).Err() })
}

func TestRedisCacheRoundTrip(t *testing.T) {
	c, raw := newRedisCache(t, time.Minute)
	ctx := t.Context()
	id, slug := testutil.UniqueName("t"), testutil.UniqueName("s")
	cleanupKeys(t, raw, "tenant:id:"+id, "tenant:slug:"+slug)
	want := Tenant{ID: id, Slug: slug, Active: true}

	if _, found, err := c.byID(ctx, id); err != nil || found {
		t.Fatalf("before put: found=%v err=%v", found, err)
	}
	if err := c.put(ctx, want); err != nil {
		t.Fatal(err)
	}
	// The documented key names, holding JSON of Tenant, with the TTL.
	for _, key := range []string{"tenant:id:" + id, "tenant:slug:" + slug} {
		b, err := raw.Get(ctx, key).Bytes()
		if err != nil {
			t.Fatalf("GET %s: %v", key, err)
		}
		var got Tenant
		if err := json.Unmarshal(b, &got); err != nil || got != want {
			t.Fatalf("%s = %s (%v), want %+v", key, b, err, want)
		}
		ttl, err := raw.TTL(ctx, key).Result()
		if err != nil || ttl <= 0 || ttl > time.Minute {
			t.Fatalf("TTL %s = %v, %v; want (0, 1m]", key, ttl, err)
		}
	}
	if got, found, err := c.byID(ctx, id); err != nil || !found || got != want {
		t.Fatalf("byID = %+v, %v, %v", got, found, err)
	}
	if got, found, err := c.bySlug(ctx, slug); err != nil || !found || got != want {
		t.Fatalf("bySlug = %+v, %v, %v", got, found, err)
	}
	if err := c.forget(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := raw.Exists(ctx, "tenant:id:"+id, "tenant:slug:"+slug).Val(); n != 0 {
		t.Fatalf("%d keys left after forget", n)
	}
}

func TestRedisCacheRejectsInconsistentEntries(t *testing.T) {
	c, raw := newRedisCache(t, time.Minute)
	ctx := t.Context()
	id, other := testutil.UniqueName("t"), testutil.UniqueName("t")
	cleanupKeys(t, raw, "tenant:id:"+id, "tenant:slug:"+id)
	cases := []struct {
		name, key, value string
		lookup           func() (Tenant, bool, error)
	}{
		{"id key holding another tenant", "tenant:id:" + id, `{"id":"` + other + `","slug":"` + other + `","active":true}`, func() (Tenant, bool, error) { return c.byID(ctx, id) }},
		{"slug key holding another slug", "tenant:slug:" + id, `{"id":"` + other + `","slug":"` + other + `","active":true}`, func() (Tenant, bool, error) { return c.bySlug(ctx, id) }},
		{"not JSON", "tenant:id:" + id, `active`, func() (Tenant, bool, error) { return c.byID(ctx, id) }},
		{"invalid tenant id", "tenant:id:" + id, `{"id":"a:b","slug":"x","active":true}`, func() (Tenant, bool, error) { return c.byID(ctx, id) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := raw.Set(ctx, tc.key, tc.value, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			if got, found, err := tc.lookup(); found || err == nil {
				t.Fatalf("got %+v found=%v err=%v; want an error and no tenant", got, found, err)
			}
		})
	}
}

func TestNewRedisCacheErrors(t *testing.T) {
	if _, err := NewRedisCache("http://nope", time.Minute); err == nil {
		t.Fatal("a non-Redis URL was accepted")
	}
	c, err := NewRedisCache("redis://127.0.0.1:1/0", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ttl != DefaultRedisCacheTTL {
		t.Fatalf("default TTL = %s", c.ttl)
	}
}

// TestPostgresRegistryWithRedis runs the registry against real PostgreSQL
// and real Redis: PostgreSQL answers fill Redis, and a second sidecar (a
// fresh registry) is served from Redis without touching PostgreSQL.
func TestPostgresRegistryWithRedis(t *testing.T) {
	cache, raw := newRedisCache(t, time.Minute)
	clock := newClock()
	r, exec := newPGRegistry(t, PostgresRegistryOptions{TTL: time.Minute, Cache: cache, Now: clock.Now})
	ctx := t.Context()
	id, slug := testutil.UniqueName("t"), testutil.UniqueName("s")
	cleanupKeys(t, raw, "tenant:id:"+id, "tenant:slug:"+slug)
	exec(`INSERT INTO tenantgate.tenants (id, slug) VALUES ($1, $2)`, id, slug)

	if _, err := r.ByID(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := raw.Exists(ctx, "tenant:id:"+id, "tenant:slug:"+slug).Val(); n != 2 {
		t.Fatalf("%d of 2 Redis keys written after a PostgreSQL lookup", n)
	}

	// A second sidecar whose database is unreachable is served from Redis.
	url := "postgres://postgres@" + freeAddr(t) + "/postgres?connect_timeout=2"
	second, err := NewPostgresRegistry(ctx, url, PostgresRegistryOptions{Cache: cache, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if got, err := second.BySlug(ctx, slug); err != nil || got.ID != id || !got.Active {
		t.Fatalf("BySlug from Redis = %+v, %v", got, err)
	}
	if _, err := second.ByID(ctx, id); err != nil {
		t.Fatalf("ByID from Redis: %v", err)
	}

	// Refresh reads PostgreSQL and rewrites Redis.
	exec(`UPDATE tenantgate.tenants SET active = false WHERE id = $1`, id)
	if got, err := r.Refresh(ctx, id); err != nil || got.Active {
		t.Fatalf("Refresh = %+v, %v", got, err)
	}
	var cached Tenant
	if err := json.Unmarshal([]byte(raw.Get(ctx, "tenant:id:"+id).Val()), &cached); err != nil || cached.Active {
		t.Fatalf("Redis after Refresh: %+v, %v; want inactive", cached, err)
	}

	// A deleted tenant disappears from Redis on Refresh.
	exec(`DELETE FROM tenantgate.tenants WHERE id = $1`, id)
	_, err = r.Refresh(ctx, id)
	wantReason(t, err, ReasonUnknownTenant)
	if n := raw.Exists(ctx, "tenant:id:"+id, "tenant:slug:"+slug).Val(); n != 0 {
		t.Fatalf("%d Redis keys left for a deleted tenant", n)
	}
}

// TestPostgresRegistryRedisDown: a broken shared cache only falls through
// to PostgreSQL.
func TestPostgresRegistryRedisDown(t *testing.T) {
	cache, err := NewRedisCache("redis://"+freeAddr(t)+"/0", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	r, exec := newPGRegistry(t, PostgresRegistryOptions{Cache: cache, Logger: quietLogger()})
	exec(`INSERT INTO tenantgate.tenants (id) VALUES ('acme')`)
	start := time.Now()
	if got, err := r.ByID(t.Context(), "acme"); err != nil || got.ID != "acme" {
		t.Fatalf("ByID with Redis down = %+v, %v", got, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a dead Redis stalled the lookup for %s", d)
	}
}
