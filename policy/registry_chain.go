package policy

import "context"

// Refresher is implemented by registries that cache: Refresh looks a tenant
// up in the backing store, bypassing and then updating every cache. The
// suspension watcher uses it so that a suspension is seen within one watch
// interval rather than one cache TTL.
type Refresher interface {
	Refresh(ctx context.Context, id string) (Tenant, error)
}

// chain asks its registries in order; the first that knows the tenant wins.
type chain []Registry

// Chain combines registries, e.g. a static list in front of the PostgreSQL
// table. A registry that fails (rather than answering "unknown") stops the
// chain with its error: a later registry must not answer for a tenant an
// earlier one might know differently, so failures stay closed.
func Chain(registries ...Registry) Registry {
	return chain(append([]Registry(nil), registries...))
}

// ByID implements Registry.
func (c chain) ByID(ctx context.Context, id string) (Tenant, error) {
	return c.first(func(r Registry) (Tenant, error) { return r.ByID(ctx, id) })
}

// BySlug implements Registry.
func (c chain) BySlug(ctx context.Context, slug string) (Tenant, error) {
	return c.first(func(r Registry) (Tenant, error) { return r.BySlug(ctx, slug) })
}

// Refresh implements Refresher, refreshing through each registry that
// caches and looking up plainly in the others.
func (c chain) Refresh(ctx context.Context, id string) (Tenant, error) {
	return c.first(func(r Registry) (Tenant, error) { return lookupFresh(ctx, r, id) })
}

func (c chain) first(lookup func(Registry) (Tenant, error)) (Tenant, error) {
	var unknown error = Refuse(ReasonUnknownTenant, "no tenant registry is configured")
	for _, r := range c {
		t, err := lookup(r)
		if err == nil {
			return t, nil
		}
		if ReasonOf(err) != ReasonUnknownTenant {
			return Tenant{}, err
		}
		unknown = err
	}
	return Tenant{}, unknown
}

// lookupFresh looks id up bypassing caches when reg supports it.
func lookupFresh(ctx context.Context, reg Registry, id string) (Tenant, error) {
	if r, ok := reg.(Refresher); ok {
		return r.Refresh(ctx, id)
	}
	return reg.ByID(ctx, id)
}
