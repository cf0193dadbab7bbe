package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgreSQL registry defaults.
const (
	DefaultRegistryTTL       = 30 * time.Second
	DefaultRegistryCacheSize = 10000

	registryQueryTimeout   = 5 * time.Second
	registryConnectTimeout = 5 * time.Second
)

// PostgresRegistryOptions configures a PostgresRegistry.
type PostgresRegistryOptions struct {
	// TTL is how long an answer (found or not) is cached in process (default 30s).
	TTL time.Duration
	// CacheSize bounds the in-process cache (default 10000 per index). It is
	// bounded because slugs come from TLS server names that clients choose.
	CacheSize int
	// Cache is an optional Redis cache shared between sidecars, read before
	// PostgreSQL and filled after. The caller keeps ownership and closes it.
	Cache *RedisCache
	// Now is the clock (default time.Now); tests inject their own.
	Now func() time.Time
	// Logger receives shared-cache failures (default slog.Default()).
	Logger *slog.Logger
}

// PostgresRegistry reads tenants from the table tenantgate.tenants
// (id text primary key, slug text unique, active bool). A NULL or empty slug
// means the slug is the id. Answers are cached in process, positive and
// negative, for TTL; a database failure with no valid cached answer is a
// ReasonRegistryError refusal (fail closed).
type PostgresRegistry struct {
	pool   *pgxpool.Pool
	ttl    time.Duration
	redis  *RedisCache
	now    func() time.Time
	log    *slog.Logger
	byID   *lru[string, cachedTenant]
	bySlug *lru[string, cachedTenant]
}

// cachedTenant is one in-process answer: a tenant, or "no such tenant".
type cachedTenant struct {
	tenant  Tenant
	found   bool
	expires time.Time
}

// NewPostgresRegistry creates the registry. It connects lazily, so a
// database that is down at start only makes lookups fail (closed).
func NewPostgresRegistry(ctx context.Context, connString string, opts PostgresRegistryOptions) (*PostgresRegistry, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("parse PostgreSQL connection string: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = registryConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL pool: %w", err)
	}
	size := cmp.Or(opts.CacheSize, DefaultRegistryCacheSize)
	if size < 1 {
		size = 1
	}
	r := &PostgresRegistry{
		pool:   pool,
		ttl:    cmp.Or(opts.TTL, DefaultRegistryTTL),
		redis:  opts.Cache,
		now:    opts.Now,
		log:    opts.Logger,
		byID:   newLRU[string, cachedTenant](size),
		bySlug: newLRU[string, cachedTenant](size),
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	return r, nil
}

// Close closes the connection pool (not the Redis cache).
func (r *PostgresRegistry) Close() { r.pool.Close() }

// EnsureSchema creates the tenants table if it does not exist. It is meant
// for tests and development; production schemas belong to migrations.
func (r *PostgresRegistry) EnsureSchema(ctx context.Context) error {
	_, err := r.pool.Exec(ctx, `
CREATE SCHEMA IF NOT EXISTS tenantgate;
CREATE TABLE IF NOT EXISTS tenantgate.tenants (
	id     text PRIMARY KEY,
	slug   text UNIQUE,
	active boolean NOT NULL DEFAULT true
)`)
	if err != nil {
		return fmt.Errorf("create tenantgate.tenants: %w", err)
	}
	return nil
}

// ByID implements Registry.
func (r *PostgresRegistry) ByID(ctx context.Context, id string) (Tenant, error) {
	if !ValidTenantID(id) {
		return Tenant{}, notRegistered(id)
	}
	if e, ok := r.cached(r.byID, id); ok {
		return e.result(notRegistered(id))
	}
	if r.redis != nil {
		t, found, err := r.redis.byID(ctx, id)
		if err != nil {
			r.log.WarnContext(ctx, "tenant cache read failed; asking PostgreSQL", "error", err)
		} else if found {
			r.remember(t)
			return t, nil
		}
	}
	return r.load(ctx, id)
}

// BySlug implements Registry.
func (r *PostgresRegistry) BySlug(ctx context.Context, slug string) (Tenant, error) {
	if !ValidTenantID(slug) {
		return Tenant{}, noSuchSlug(slug)
	}
	if e, ok := r.cached(r.bySlug, slug); ok {
		return e.result(noSuchSlug(slug))
	}
	if r.redis != nil {
		t, found, err := r.redis.bySlug(ctx, slug)
		if err != nil {
			r.log.WarnContext(ctx, "tenant cache read failed; asking PostgreSQL", "error", err)
		} else if found {
			r.remember(t)
			return t, nil
		}
	}
	t, found, err := r.query(ctx, `SELECT id, slug, active FROM tenantgate.tenants
WHERE slug = $1 OR (id = $1 AND (slug IS NULL OR slug = ''))`, slug)
	if err != nil {
		return Tenant{}, err
	}
	if !found {
		r.bySlug.put(slug, cachedTenant{expires: r.now().Add(r.ttl)})
		return Tenant{}, noSuchSlug(slug)
	}
	r.remember(t)
	r.share(ctx, t)
	return t, nil
}

// Refresh implements Refresher: it asks PostgreSQL directly and updates the
// in-process and shared caches with the answer.
func (r *PostgresRegistry) Refresh(ctx context.Context, id string) (Tenant, error) {
	if !ValidTenantID(id) {
		return Tenant{}, notRegistered(id)
	}
	return r.load(ctx, id)
}

// load reads id from PostgreSQL and caches the answer.
func (r *PostgresRegistry) load(ctx context.Context, id string) (Tenant, error) {
	t, found, err := r.query(ctx, `SELECT id, slug, active FROM tenantgate.tenants WHERE id = $1`, id)
	if err != nil {
		return Tenant{}, err
	}
	if !found {
		r.byID.put(id, cachedTenant{expires: r.now().Add(r.ttl)})
		if r.redis != nil {
			if err := r.redis.forget(ctx, id); err != nil {
				r.log.WarnContext(ctx, "tenant cache delete failed", "error", err)
			}
		}
		return Tenant{}, notRegistered(id)
	}
	r.remember(t)
	r.share(ctx, t)
	return t, nil
}

// query runs a lookup that returns at most one tenant. More than one row
// (a slug equal to another tenant's slug-less id) is ambiguous and refused.
func (r *PostgresRegistry) query(ctx context.Context, sql, arg string) (Tenant, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, registryQueryTimeout)
	defer cancel()
	rows, err := r.pool.Query(ctx, sql+" LIMIT 2", arg)
	if err != nil {
		return Tenant{}, false, r.failure(err)
	}
	type row struct {
		ID     string
		Slug   *string
		Active bool
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		return Tenant{}, false, r.failure(err)
	}
	switch len(got) {
	case 0:
		return Tenant{}, false, nil
	case 1:
	default:
		return Tenant{}, false, Refuse(ReasonRegistryError, "tenant registry is ambiguous for %s", quoteShort(arg))
	}
	t := Tenant{ID: got[0].ID, Active: got[0].Active}
	if got[0].Slug != nil {
		t.Slug = *got[0].Slug
	}
	if t.Slug == "" {
		t.Slug = t.ID
	}
	if !ValidTenantID(t.ID) || !ValidTenantID(t.Slug) {
		// Ids flow into keys, labels and settings; a row we cannot use
		// safely is a registry fault, not a tenant.
		return Tenant{}, false, Refuse(ReasonRegistryError, "tenant registry row has an invalid id or slug")
	}
	return t, true, nil
}

// failure turns a database error into a fail-closed refusal. The cause is
// logged, not returned: clients see the reason, operators see the details.
func (r *PostgresRegistry) failure(err error) error {
	if errors.Is(err, context.Canceled) {
		return Refuse(ReasonRegistryError, "tenant lookup was cancelled")
	}
	r.log.Error("tenant registry query failed", "error", err)
	return Refuse(ReasonRegistryError, "tenant registry is unavailable")
}

// cached returns a still-valid in-process answer.
func (r *PostgresRegistry) cached(c *lru[string, cachedTenant], key string) (cachedTenant, bool) {
	e, ok := c.get(key)
	if !ok || !r.now().Before(e.expires) {
		return cachedTenant{}, false
	}
	return e, true
}

// result is the cached answer; unknown is the refusal for "not found".
func (e cachedTenant) result(unknown error) (Tenant, error) {
	if !e.found {
		return Tenant{}, unknown
	}
	return e.tenant, nil
}

// remember caches a found tenant under its id and its slug.
func (r *PostgresRegistry) remember(t Tenant) {
	e := cachedTenant{tenant: t, found: true, expires: r.now().Add(r.ttl)}
	r.byID.put(t.ID, e)
	r.bySlug.put(t.Slug, e)
}

// share fills the shared cache; failing to is logged, not fatal.
func (r *PostgresRegistry) share(ctx context.Context, t Tenant) {
	if r.redis == nil {
		return
	}
	if err := r.redis.put(ctx, t); err != nil {
		r.log.WarnContext(ctx, "tenant cache write failed", "error", err)
	}
}
