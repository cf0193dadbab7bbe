package policy

import "testing"

func TestChain(t *testing.T) {
	first, err := NewStaticRegistry([]Tenant{{ID: "acme", Active: false}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := NewStaticRegistry([]Tenant{{ID: "acme", Active: true}, {ID: "globex", Slug: "gx", Active: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	c := Chain(first, second)
	if got, err := c.ByID(ctx, "acme"); err != nil || got.Active {
		t.Fatalf("ByID(acme) = %+v, %v; the first registry must win", got, err)
	}
	if got, err := c.BySlug(ctx, "gx"); err != nil || got.ID != "globex" {
		t.Fatalf("BySlug(gx) = %+v, %v", got, err)
	}
	if got, err := c.(Refresher).Refresh(ctx, "globex"); err != nil || got.ID != "globex" {
		t.Fatalf("Refresh(globex) = %+v, %v", got, err)
	}
	_, err = c.ByID(ctx, "nobody")
	wantReason(t, err, ReasonUnknownTenant)

	// A failing registry stops the chain: a later one must not answer.
	failing := Chain(failingRegistry{}, second)
	_, err = failing.ByID(ctx, "acme")
	wantReason(t, err, ReasonRegistryError)

	_, err = Chain().ByID(ctx, "acme")
	wantReason(t, err, ReasonUnknownTenant)
}
