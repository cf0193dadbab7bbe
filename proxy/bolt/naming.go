package bolt

import (
	"fmt"
	"strings"
)

// DefaultDatabaseTemplate names a tenant's database in database mode.
const DefaultDatabaseTemplate = "tenant-{tenant}"

// Neo4j database names: 3 to 63 characters, ASCII lower-case letters,
// digits, dots and dashes, starting with a letter; names beginning with
// "system" are reserved. Neo4j folds names to lower case, so "Acme" and
// "acme" would be one database.
const (
	minDatabaseName = 3
	maxDatabaseName = 63
)

// databaseNamer maps a tenant id to its database name: the template's
// fixed prefix and suffix around the encoded id.
//
// Tenant ids match ^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$. The encoding keeps
// lower-case letters, digits and '-' as they are and escapes the rest with
// '.', which ids never contain: an upper-case letter X becomes ".x" and
// '_' becomes "..". Every code is either one character other than '.' or
// starts with '.', so the encoding is a prefix code and the mapping is
// injective: two tenants never share a database, whatever their case.
// The common ids (lower-case slugs, UUIDs) map to themselves. An id whose
// name would break Neo4j's rules (too long, not starting with a letter, a
// reserved name) has no database; its logins are refused.
type databaseNamer struct {
	prefix, suffix string
}

func newDatabaseNamer(template string) (databaseNamer, error) {
	if strings.Count(template, "{tenant}") != 1 {
		return databaseNamer{}, fmt.Errorf("bolt.database_template %q must contain {tenant} exactly once", template)
	}
	prefix, suffix, _ := strings.Cut(template, "{tenant}")
	for _, c := range prefix + suffix {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return databaseNamer{}, fmt.Errorf("bolt.database_template %q: only lower-case letters, digits, '.' and '-' may surround {tenant}", template)
		}
	}
	if prefix != "" && !(prefix[0] >= 'a' && prefix[0] <= 'z') {
		return databaseNamer{}, fmt.Errorf("bolt.database_template %q must start with a letter (or with {tenant})", template)
	}
	if len(prefix)+len(suffix) >= maxDatabaseName {
		return databaseNamer{}, fmt.Errorf("bolt.database_template %q leaves no room for the tenant id", template)
	}
	if strings.HasPrefix(prefix, "system") {
		return databaseNamer{}, fmt.Errorf("bolt.database_template %q: names starting with system are reserved by Neo4j", template)
	}
	return databaseNamer{prefix: prefix, suffix: suffix}, nil
}

// name returns tenant's database name, or why it has none.
func (n databaseNamer) name(tenant string) (string, error) {
	var b strings.Builder
	b.Grow(len(n.prefix) + 2*len(tenant) + len(n.suffix))
	b.WriteString(n.prefix)
	for _, c := range []byte(tenant) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			b.WriteByte(c)
		case c >= 'A' && c <= 'Z':
			b.WriteByte('.')
			b.WriteByte(c - 'A' + 'a')
		case c == '_':
			b.WriteString("..")
		default:
			return "", fmt.Errorf("tenant id %q has no Neo4j database name", tenant)
		}
	}
	b.WriteString(n.suffix)
	name := b.String()
	switch {
	case tenant == "":
		return "", fmt.Errorf("no tenant")
	case len(name) < minDatabaseName || len(name) > maxDatabaseName:
		return "", fmt.Errorf("tenant id %q maps to database name %q, which is not 3 to 63 characters", tenant, name)
	case !(name[0] >= 'a' && name[0] <= 'z'):
		return "", fmt.Errorf("tenant id %q maps to database name %q, which does not start with a letter (use a template with a prefix, e.g. %s)", tenant, name, DefaultDatabaseTemplate)
	case strings.HasPrefix(name, "system"):
		return "", fmt.Errorf("tenant id %q maps to database name %q, which Neo4j reserves", tenant, name)
	}
	return name, nil
}
