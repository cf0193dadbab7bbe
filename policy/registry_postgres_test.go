package policy

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/testutil"
)

// newPGRegistry returns a registry on a fresh database with the schema in
// place, plus a function that runs SQL on that database.
func newPGRegistry(t *testing.T, opts PostgresRegistryOptions) (*PostgresRegistry, func(sql string, args ...any)) {
	t.Helper()
	url := testutil.NewPostgresDB(t)
	r, err := NewPostgresRegistry(t.Context(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if err := r.EnsureSchema(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := r.EnsureSchema(t.Context()); err != nil {
		t.Fatalf("EnsureSchema is not idempotent: %v", err)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := r.pool.Exec(t.Context(), sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	return r, exec
}

func TestPostgresRegistryLookups(t *testing.T) {
	r, exec := newPGRegistry(t, PostgresRegistryOptions{})
	exec(`INSERT INTO tenantgate.tenants (id, slug, active) VALUES
		('acme', 'acme-corp', true), ('globex', NULL, false), ('initech', '', true)`)
	ctx := t.Context()

	found := []struct {
		name   string
		lookup func() (Tenant, error)
		want   Tenant
	}{
		{"by id", func() (Tenant, error) { return r.ByID(ctx, "acme") }, Tenant{ID: "acme", Slug: "acme-corp", Active: true}},
		{"by slug", func() (Tenant, error) { return r.BySlug(ctx, "acme-corp") }, Tenant{ID: "acme", Slug: "acme-corp", Active: true}},
		{"inactive, NULL slug defaults to id", func() (Tenant, error) { return r.ByID(ctx, "globex") }, Tenant{ID: "globex", Slug: "globex", Active: false}},
		{"slug lookup of a NULL slug", func() (Tenant, error) { return r.BySlug(ctx, "globex") }, Tenant{ID: "globex", Slug: "globex", Active: false}},
		{"slug lookup of an empty slug", func() (Tenant, error) { return r.BySlug(ctx, "initech") }, Tenant{ID: "initech", Slug: "initech", Active: true}},
	}
	for _, tc := range found {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.lookup()
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}

	unknown := []struct {
		name   string
		lookup func() (Tenant, error)
	}{
		{"unknown id", func() (Tenant, error) { return r.ByID(ctx, "nobody") }},
		{"unknown slug", func() (Tenant, error) { return r.BySlug(ctx, "nobody") }},
		{"id is not a slug when a slug is set", func() (Tenant, error) { return r.BySlug(ctx, "acme") }},
		{"invalid id is never queried", func() (Tenant, error) { return r.ByID(ctx, "acme' OR '1'='1") }},
		{"invalid slug is never queried", func() (Tenant, error) { return r.BySlug(ctx, "a.b") }},
	}
	for _, tc := range unknown {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.lookup()
			wantReason(t, err, ReasonUnknownTenant)
		})
	}
}

func TestPostgresRegistryTTLCache(t *testing.T) {
	clock := newClock()
	r, exec := newPGRegistry(t, PostgresRegistryOptions{TTL: time.Minute, Now: clock.Now})
	exec(`INSERT INTO tenantgate.tenants (id, slug) VALUES ('acme', 'acme-corp')`)
	ctx := t.Context()

	if got, err := r.ByID(ctx, "acme"); err != nil || !got.Active {
		t.Fatalf("ByID = %+v, %v", got, err)
	}
	exec(`UPDATE tenantgate.tenants SET active = false WHERE id = 'acme'`)
	clock.Advance(59 * time.Second)
	if got, err := r.ByID(ctx, "acme"); err != nil || !got.Active {
		t.Fatalf("before TTL: %+v, %v; want the cached active answer", got, err)
	}
	if got, err := r.BySlug(ctx, "acme-corp"); err != nil || !got.Active {
		t.Fatalf("before TTL by slug: %+v, %v; want the cached active answer", got, err)
	}
	clock.Advance(time.Second)
	if got, err := r.ByID(ctx, "acme"); err != nil || got.Active {
		t.Fatalf("after TTL: %+v, %v; want the update seen", got, err)
	}

	// Negative answers are cached too.
	_, err := r.ByID(ctx, "newco")
	wantReason(t, err, ReasonUnknownTenant)
	_, err = r.BySlug(ctx, "newco-slug")
	wantReason(t, err, ReasonUnknownTenant)
	exec(`INSERT INTO tenantgate.tenants (id, slug) VALUES ('newco', 'newco-slug')`)
	_, err = r.ByID(ctx, "newco")
	wantReason(t, err, ReasonUnknownTenant)
	_, err = r.BySlug(ctx, "newco-slug")
	wantReason(t, err, ReasonUnknownTenant)
	clock.Advance(time.Minute)
	if _, err := r.ByID(ctx, "newco"); err != nil {
		t.Fatalf("after TTL: %v", err)
	}
	if _, err := r.BySlug(ctx, "newco-slug"); err != nil {
		t.Fatalf("after TTL by slug: %v", err)
	}
}

func TestPostgresRegistryRefresh(t *testing.T) {
	clock := newClock()
	r, exec := newPGRegistry(t, PostgresRegistryOptions{TTL: time.Hour, Now: clock.Now})
	exec(`INSERT INTO tenantgate.tenants (id) VALUES ('acme')`)
	ctx := t.Context()
	if _, err := r.ByID(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	exec(`UPDATE tenantgate.tenants SET active = false WHERE id = 'acme'`)
	if got, err := r.Refresh(ctx, "acme"); err != nil || got.Active {
		t.Fatalf("Refresh = %+v, %v; want the fresh inactive answer", got, err)
	}
	if got, err := r.ByID(ctx, "acme"); err != nil || got.Active {
		t.Fatalf("ByID after Refresh = %+v, %v; the cache was not updated", got, err)
	}
	exec(`DELETE FROM tenantgate.tenants WHERE id = 'acme'`)
	_, err := r.Refresh(ctx, "acme")
	wantReason(t, err, ReasonUnknownTenant)
	_, err = r.ByID(ctx, "acme")
	wantReason(t, err, ReasonUnknownTenant)
}

func TestPostgresRegistryBadRows(t *testing.T) {
	r, exec := newPGRegistry(t, PostgresRegistryOptions{})
	exec(`INSERT INTO tenantgate.tenants (id, slug) VALUES ('shared', NULL), ('other', 'shared'), ('bad:id', 'bad-row')`)
	ctx := t.Context()
	_, err := r.BySlug(ctx, "shared") // one tenant's id, another's slug
	wantReason(t, err, ReasonRegistryError)
	_, err = r.BySlug(ctx, "bad-row") // a row whose id is unsafe
	wantReason(t, err, ReasonRegistryError)
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestPostgresRegistryDown needs no server: nothing listens on the port.
func TestPostgresRegistryDown(t *testing.T) {
	url := fmt.Sprintf("postgres://postgres@%s/postgres?connect_timeout=2", freeAddr(t))
	r, err := NewPostgresRegistry(t.Context(), url, PostgresRegistryOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("a down database must not fail construction: %v", err)
	}
	defer r.Close()
	_, err = r.ByID(t.Context(), "acme")
	wantReason(t, err, ReasonRegistryError)
	_, err = r.BySlug(t.Context(), "acme")
	wantReason(t, err, ReasonRegistryError)
	_, err = r.Refresh(t.Context(), "acme")
	wantReason(t, err, ReasonRegistryError)

	// Nothing was cached from a failure: the next lookup fails again.
	_, err = r.ByID(t.Context(), "acme")
	wantReason(t, err, ReasonRegistryError)

	if _, err := NewPostgresRegistry(t.Context(), "postgres://[::1", PostgresRegistryOptions{}); err == nil {
		t.Fatal("an invalid connection string was accepted")
	}
}

func TestPostgresRegistryCachedAnswerOutlivesOutage(t *testing.T) {
	clock := newClock()
	r, exec := newPGRegistry(t, PostgresRegistryOptions{TTL: time.Minute, Now: clock.Now, Logger: quietLogger()})
	exec(`INSERT INTO tenantgate.tenants (id) VALUES ('acme')`)
	ctx := t.Context()
	if _, err := r.ByID(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	r.pool.Close() // the database is gone from now on
	if _, err := r.ByID(ctx, "acme"); err != nil {
		t.Fatalf("cached answer during the outage: %v", err)
	}
	_, err := r.ByID(ctx, "globex")
	wantReason(t, err, ReasonRegistryError)
	clock.Advance(time.Minute)
	_, err = r.ByID(ctx, "acme")
	wantReason(t, err, ReasonRegistryError)
}

func TestPostgresRegistryCancelledContext(t *testing.T) {
	r, _ := newPGRegistry(t, PostgresRegistryOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := r.ByID(ctx, "acme")
	wantReason(t, err, ReasonRegistryError)
}
