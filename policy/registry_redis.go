package policy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisCacheTTL is how long a tenant stays in the shared cache.
const DefaultRedisCacheTTL = 30 * time.Second

// redisOpTimeout bounds one cache operation. The cache only saves a
// PostgreSQL query, so a slow or dead Redis must cost little: it is given
// one short try, then the lookup goes to PostgreSQL.
const redisOpTimeout = time.Second

// RedisCache is the tenant cache shared by every sidecar of a deployment.
// It holds JSON-encoded Tenant values under tenant:id:<id> and
// tenant:slug:<slug>, each with a TTL, so one PostgreSQL lookup serves all
// sidecars until the TTL ends.
//
// The cache is trusted: whoever can write these keys can mark a tenant
// active. Entries are still checked for consistency with the key they were
// read from, and a cache failure only ever falls through to PostgreSQL.
type RedisCache struct {
	client *redis.Client
	ttl    time.Duration
}

// NewRedisCache connects lazily to the Redis server at url (redis:// or
// rediss://). ttl <= 0 means DefaultRedisCacheTTL.
func NewRedisCache(url string, ttl time.Duration) (*RedisCache, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse Redis URL: %w", err)
	}
	if ttl <= 0 {
		ttl = DefaultRedisCacheTTL
	}
	// Fail fast unless the URL asks otherwise (go-redis defaults retry for
	// seconds, which would stall every connection during a Redis outage).
	if opts.MaxRetries == 0 {
		opts.MaxRetries = -1
	}
	if opts.DialerRetries == 0 {
		opts.DialerRetries = 1
	}
	opts.DialTimeout = cmp.Or(opts.DialTimeout, redisOpTimeout)
	opts.ReadTimeout = cmp.Or(opts.ReadTimeout, redisOpTimeout)
	opts.WriteTimeout = cmp.Or(opts.WriteTimeout, redisOpTimeout)
	return &RedisCache{client: redis.NewClient(opts), ttl: ttl}, nil
}

// Close closes the connection pool.
func (c *RedisCache) Close() error { return c.client.Close() }

func redisIDKey(id string) string     { return "tenant:id:" + id }
func redisSlugKey(slug string) string { return "tenant:slug:" + slug }

// byID returns the cached tenant, found=false on a miss.
func (c *RedisCache) byID(ctx context.Context, id string) (t Tenant, found bool, err error) {
	t, found, err = c.get(ctx, redisIDKey(id))
	if found && t.ID != id {
		return Tenant{}, false, fmt.Errorf("%s holds tenant %q", redisIDKey(id), t.ID)
	}
	return t, found, err
}

// bySlug returns the cached tenant, found=false on a miss.
func (c *RedisCache) bySlug(ctx context.Context, slug string) (t Tenant, found bool, err error) {
	t, found, err = c.get(ctx, redisSlugKey(slug))
	if found && t.Slug != slug {
		return Tenant{}, false, fmt.Errorf("%s holds slug %q", redisSlugKey(slug), t.Slug)
	}
	return t, found, err
}

func (c *RedisCache) get(ctx context.Context, key string) (Tenant, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	b, err := c.client.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return Tenant{}, false, nil
	}
	if err != nil {
		return Tenant{}, false, err
	}
	var t Tenant
	if err := json.Unmarshal(b, &t); err != nil {
		return Tenant{}, false, fmt.Errorf("%s: %w", key, err)
	}
	if !ValidTenantID(t.ID) || !ValidTenantID(t.Slug) {
		return Tenant{}, false, fmt.Errorf("%s holds an invalid tenant", key)
	}
	return t, true, nil
}

// put caches t under both of its keys.
func (c *RedisCache) put(ctx context.Context, t Tenant) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	_, err = c.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, redisIDKey(t.ID), b, c.ttl)
		p.Set(ctx, redisSlugKey(t.Slug), b, c.ttl)
		return nil
	})
	return err
}

// forget drops the keys of a tenant the database no longer knows: its id
// key, and the slug key the cached entry names.
func (c *RedisCache) forget(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	keys := []string{redisIDKey(id)}
	if t, found, err := c.get(ctx, redisIDKey(id)); err == nil && found && t.ID == id {
		keys = append(keys, redisSlugKey(t.Slug))
	}
	return c.client.Del(ctx, keys...).Err()
}
