package policy

import (
	"context"
	"fmt"
)

// StaticRegistry is a fixed tenant list, typically from the configuration
// file. It is immutable and safe for concurrent use.
type StaticRegistry struct {
	byID   map[string]Tenant
	bySlug map[string]Tenant
}

// NewStaticRegistry validates tenants (ids and slugs must be valid tenant
// ids and unique; an empty slug defaults to the id) and indexes them.
func NewStaticRegistry(tenants []Tenant) (*StaticRegistry, error) {
	r := &StaticRegistry{
		byID:   make(map[string]Tenant, len(tenants)),
		bySlug: make(map[string]Tenant, len(tenants)),
	}
	for i, t := range tenants {
		if !ValidTenantID(t.ID) {
			return nil, fmt.Errorf("tenant #%d: id %q is not a valid tenant id", i, t.ID)
		}
		if t.Slug == "" {
			t.Slug = t.ID
		}
		// Slugs travel in TLS server names, so they get the same safe shape.
		if !ValidTenantID(t.Slug) {
			return nil, fmt.Errorf("tenant %s: slug %q is not valid", t.ID, t.Slug)
		}
		if _, dup := r.byID[t.ID]; dup {
			return nil, fmt.Errorf("tenant %s: duplicate id", t.ID)
		}
		if other, dup := r.bySlug[t.Slug]; dup {
			return nil, fmt.Errorf("tenant %s: slug %q is already used by tenant %s", t.ID, t.Slug, other.ID)
		}
		r.byID[t.ID] = t
		r.bySlug[t.Slug] = t
	}
	return r, nil
}

// ByID implements Registry.
func (r *StaticRegistry) ByID(_ context.Context, id string) (Tenant, error) {
	if t, ok := r.byID[id]; ok {
		return t, nil
	}
	return Tenant{}, notRegistered(id)
}

// BySlug implements Registry.
func (r *StaticRegistry) BySlug(_ context.Context, slug string) (Tenant, error) {
	if t, ok := r.bySlug[slug]; ok {
		return t, nil
	}
	return Tenant{}, noSuchSlug(slug)
}

// notRegistered and noSuchSlug are the refusals every registry returns for
// a tenant it does not know.
func notRegistered(id string) error {
	return Refuse(ReasonUnknownTenant, "tenant %s is not registered", quoteShort(id))
}

func noSuchSlug(slug string) error {
	return Refuse(ReasonUnknownTenant, "no tenant has slug %s", quoteShort(slug))
}
