package mongo

import (
	"errors"
	"strings"
	"testing"
)

func TestNewDatabaseNamer(t *testing.T) {
	for _, c := range []struct {
		template string
		ok       bool
	}{
		{"{db}__{tenant}", true},
		{"t_{tenant}_{db}", true},
		{"{db}-{tenant}-x", true},
		{"{db}{tenant}", false},       // no separator
		{"{db}__", false},             // no tenant
		{"{db}.{tenant}", false},      // dot
		{"{db}__{tenant}{db}", false}, // twice
		{"{db}__T{tenant}", false},    // upper case: names compare case-insensitively
	} {
		_, err := NewDatabaseNamer(c.template)
		if (err == nil) != c.ok {
			t.Errorf("NewDatabaseNamer(%q): err %v, want ok %v", c.template, err, c.ok)
		}
	}
}

func TestDatabaseNamerMap(t *testing.T) {
	n, err := NewDatabaseNamer(DefaultDatabaseTemplate)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		db, tenant, want string
		code             int32
	}{
		{"shop", "acme", "shop__acme", 0},
		{"shop", "a__b", "shop__a____b", 0},
		{"shop", "Acme", "shop___acme", 0},
		{"shop", "acme-corp", "shop__acme-corp", 0},
		{"Shop", "acme", "Shop__acme", 0},
		{"x__b", "a", "", codeInvalidNamespace}, // the separator: "x__b__a" could read back for tenant "b__a"
		{"X__B", "a", "", codeInvalidNamespace},
		{"x_", "acme", "", codeInvalidNamespace}, // "x___acme" is tenant "Acme"'s "x"
		{"admin", "acme", "", codeUnauthorized},
		{"Config", "acme", "", codeUnauthorized},
		{"", "acme", "", codeInvalidNamespace},
		{"a.b", "acme", "", codeInvalidNamespace},
		{"a$b", "acme", "", codeInvalidNamespace},
		{strings.Repeat("d", 58), "acme", "", codeInvalidNamespace}, // 64 bytes mapped
	} {
		got, err := n.Map(c.db, c.tenant)
		var ce *CommandError
		switch {
		case c.code == 0 && (err != nil || got != c.want):
			t.Errorf("Map(%q, %q) = %q, %v; want %q", c.db, c.tenant, got, err, c.want)
		case c.code != 0 && (!errors.As(err, &ce) || ce.Code != c.code):
			t.Errorf("Map(%q, %q) = %q, %v; want code %d", c.db, c.tenant, got, err, c.code)
		}
	}
}

// TestDatabaseNamerUnmap: a server database reads back to at most one
// tenant's application name.
func TestDatabaseNamerUnmap(t *testing.T) {
	for _, template := range []string{DefaultDatabaseTemplate, "t_{tenant}_{db}"} {
		n, err := NewDatabaseNamer(template)
		if err != nil {
			t.Fatal(err)
		}
		tenants := []string{"a", "b", "a__b", "b__a", "a_b", "x"}
		for _, tenant := range tenants {
			for _, db := range []string{"shop", "x", "b"} {
				name, err := n.Map(db, tenant)
				if err != nil {
					continue
				}
				for _, other := range tenants {
					app, ok := n.Unmap(name, other)
					if other == tenant && (!ok || app != db) {
						t.Errorf("%s: Unmap(%q, %q) = %q, %v; want %q", template, name, other, app, ok, db)
					}
					if other != tenant && ok {
						t.Errorf("%s: %q of tenant %q reads back for tenant %q as %q", template, name, tenant, other, app)
					}
				}
			}
		}
		for _, name := range []string{"admin", "shop", "shop__", "__acme", "local"} {
			if app, ok := n.Unmap(name, "acme"); ok {
				t.Errorf("%s: Unmap(%q) = %q", template, name, app)
			}
		}
	}
}

// TestDatabaseNamerCaseInsensitiveOneToOne: MongoDB compares database names
// case-insensitively, so no two (application name, tenant) pairs of
// different tenants may map to names equal in lower case, for any template.
func TestDatabaseNamerCaseInsensitiveOneToOne(t *testing.T) {
	tenants := []string{"acme", "Acme", "ACME", "a", "A", "a_", "a__", "a_b", "a__b", "A_b", "b", "a-", "a--b", "0", "x"}
	dbs := []string{"x", "X", "x_", "_x", "x-", "-x", "shop", "a", "b", "a_b", "acme", "_acme", "__acme", "a-b"}
	for _, template := range []string{DefaultDatabaseTemplate, "t_{tenant}_{db}", "{tenant}__{db}", "{db}-{tenant}", "{db}_-_{tenant}"} {
		n, err := NewDatabaseNamer(template)
		if err != nil {
			t.Fatal(err)
		}
		type pair struct{ db, tenant string }
		seen := map[string]pair{}
		for _, tenant := range tenants {
			for _, db := range dbs {
				name, err := n.Map(db, tenant)
				if err != nil {
					continue
				}
				key := strings.ToLower(name)
				if prev, ok := seen[key]; ok && prev.tenant != tenant {
					t.Errorf("%s: tenant %q's %q and tenant %q's %q are one database (%q)", template, prev.tenant, prev.db, tenant, db, name)
				}
				seen[key] = pair{db, tenant}
				if app, ok := n.Unmap(name, tenant); !ok || app != db {
					t.Errorf("%s: Unmap(%q, %q) = %q, %v; want %q", template, name, tenant, app, ok, db)
				}
			}
		}
	}
}
