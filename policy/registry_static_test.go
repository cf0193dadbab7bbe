package policy

import (
	"strings"
	"testing"
)

func TestStaticRegistry(t *testing.T) {
	r, err := NewStaticRegistry([]Tenant{
		{ID: "acme", Slug: "acme-corp", Active: true},
		{ID: "globex", Active: false},
		{ID: "initech", Active: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	if got, err := r.ByID(ctx, "acme"); err != nil || got != (Tenant{ID: "acme", Slug: "acme-corp", Active: true}) {
		t.Fatalf("ByID(acme) = %+v, %v", got, err)
	}
	if got, err := r.ByID(ctx, "globex"); err != nil || got.Active || got.Slug != "globex" {
		t.Fatalf("ByID(globex) = %+v, %v; want inactive with slug defaulted to id", got, err)
	}
	if got, err := r.BySlug(ctx, "acme-corp"); err != nil || got.ID != "acme" {
		t.Fatalf("BySlug(acme-corp) = %+v, %v", got, err)
	}
	if got, err := r.BySlug(ctx, "initech"); err != nil || got.ID != "initech" {
		t.Fatalf("BySlug(initech) = %+v, %v", got, err)
	}
	_, err = r.ByID(ctx, "nobody")
	wantReason(t, err, ReasonUnknownTenant)
	_, err = r.BySlug(ctx, "acme") // an id is not a slug when the tenant has one
	wantReason(t, err, ReasonUnknownTenant)
}

func TestStaticRegistryErrors(t *testing.T) {
	cases := []struct {
		name    string
		tenants []Tenant
		want    string
	}{
		{"invalid id", []Tenant{{ID: "a:b"}}, "not a valid tenant id"},
		{"empty id", []Tenant{{ID: ""}}, "not a valid tenant id"},
		{"invalid slug", []Tenant{{ID: "a", Slug: "a.b"}}, "slug"},
		{"duplicate id", []Tenant{{ID: "a"}, {ID: "a", Slug: "other"}}, "duplicate id"},
		{"duplicate slug", []Tenant{{ID: "a", Slug: "s"}, {ID: "b", Slug: "s"}}, "already used"},
		{"slug equal to another's defaulted slug", []Tenant{{ID: "a"}, {ID: "b", Slug: "a"}}, "already used"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewStaticRegistry(tc.tenants)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
