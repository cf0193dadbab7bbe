package mongo

import (
	"fmt"
	"strings"
)

// maxDBNameLen is MongoDB's limit on database names.
const maxDBNameLen = 63

// DatabaseNamer maps an application's database name to the tenant's own
// database with a template such as "{db}__{tenant}", and back.
//
// MongoDB compares database names case-insensitively (it refuses to create
// "shop__Acme" next to "shop__acme"), so the mapping must be one-to-one on
// lower-cased names, for every tenant id and every application name:
//
//   - The tenant id is encoded in lower case: lower-case letters, digits and
//     '-' stay as they are, an upper-case X becomes "_x" and '_' becomes
//     "__". Every code is one character other than '_' or starts with '_',
//     so the codes form a prefix code and the encoding is injective. Common
//     ids (lower-case slugs, UUIDs) map to themselves.
//   - The template's literals are lower case, and an application's name may
//     neither contain the separator (the text between {db} and {tenant}),
//     nor, lower-cased, start (tenant first) or end (db first) with one of
//     its characters. Then a name splits into (db, tenant) at one place
//     only: two splits would put the separator inside the shorter side's
//     db, or make that db start or end with a separator character. With
//     "{db}__{tenant}", tenant "b" cannot name database "x__a" (or "x_") to
//     reach tenant "a"'s "x", even though tenant ids may contain "__".
type DatabaseNamer struct {
	pre, sep, post string
	dbFirst        bool
}

// NewDatabaseNamer parses template, which must hold {db} and {tenant} once
// each, separated by a non-empty literal, with literals made of
// [a-z0-9_-] only.
func NewDatabaseNamer(template string) (*DatabaseNamer, error) {
	if strings.Count(template, "{db}") != 1 || strings.Count(template, "{tenant}") != 1 {
		return nil, fmt.Errorf("mongo.database_template %q must contain {db} and {tenant} exactly once", template)
	}
	d, t := strings.Index(template, "{db}"), strings.Index(template, "{tenant}")
	n := &DatabaseNamer{dbFirst: d < t}
	if n.dbFirst {
		n.pre, n.sep, n.post = template[:d], template[d+len("{db}"):t], template[t+len("{tenant}"):]
	} else {
		n.pre, n.sep, n.post = template[:t], template[t+len("{tenant}"):d], template[d+len("{db}"):]
	}
	if n.sep == "" {
		return nil, fmt.Errorf("mongo.database_template %q needs a separator between {db} and {tenant}", template)
	}
	for _, lit := range []string{n.pre, n.sep, n.post} {
		if strings.IndexFunc(lit, func(r rune) bool { return !isNameRune(r) }) >= 0 {
			return nil, fmt.Errorf("mongo.database_template %q: only lower-case letters, digits, '_' and '-' may surround the placeholders (MongoDB compares database names case-insensitively)", template)
		}
	}
	return n, nil
}

// encodeTenant is the tenant id's part of a database name: lower case, one
// to one (see DatabaseNamer).
func encodeTenant(tenant string) string {
	var b strings.Builder
	b.Grow(2 * len(tenant))
	for _, c := range []byte(tenant) {
		switch {
		case c >= 'A' && c <= 'Z':
			b.WriteByte('_')
			b.WriteByte(c - 'A' + 'a')
		case c == '_':
			b.WriteString("__")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}

// reservedDB reports the server's own databases, off limits to tenants.
func reservedDB(db string) bool {
	switch strings.ToLower(db) {
	case "admin", "local", "config", "$external":
		return true
	}
	return false
}

// Map returns the tenant's database for the application's db.
func (n *DatabaseNamer) Map(db, tenant string) (string, error) {
	if err := n.checkAppName(db); err != nil {
		return "", err
	}
	var name string
	if n.dbFirst {
		name = n.pre + db + n.sep + encodeTenant(tenant) + n.post
	} else {
		name = n.pre + encodeTenant(tenant) + n.sep + db + n.post
	}
	if len(name) > maxDBNameLen {
		return "", refuse(codeInvalidNamespace, reasonNamespace, "database name %q is too long: with the tenant it becomes %d bytes, over MongoDB's limit of %d", db, len(name), maxDBNameLen)
	}
	return name, nil
}

func (n *DatabaseNamer) checkAppName(db string) error {
	switch {
	case db == "":
		return refuse(codeInvalidNamespace, reasonNamespace, "the database name is empty")
	case reservedDB(db):
		return refuse(codeUnauthorized, reasonNamespace, "database %q is off limits through tenantgate", db)
	case strings.ContainsAny(db, "/\\. \"$*<>:|?\x00"):
		return refuse(codeInvalidNamespace, reasonNamespace, "invalid database name %q", db)
	}
	lower := strings.ToLower(db)
	if strings.Contains(lower, n.sep) {
		return refuse(codeInvalidNamespace, reasonNamespace, "database names may not contain %q through tenantgate", n.sep)
	}
	edge, where := lower[len(lower)-1], "end"
	if !n.dbFirst {
		edge, where = lower[0], "start"
	}
	if strings.IndexByte(n.sep, edge) >= 0 {
		return refuse(codeInvalidNamespace, reasonNamespace, "database names may not %s with %q through tenantgate", where, edge)
	}
	return nil
}

// Unmap returns the application's name for a server database, if it is one
// of tenant's.
func (n *DatabaseNamer) Unmap(name, tenant string) (string, bool) {
	var db string
	if n.dbFirst {
		tail := n.sep + encodeTenant(tenant) + n.post
		if !strings.HasPrefix(name, n.pre) || !strings.HasSuffix(name, tail) || len(name) < len(n.pre)+len(tail) {
			return "", false
		}
		db = name[len(n.pre) : len(name)-len(tail)]
	} else {
		head := n.pre + encodeTenant(tenant) + n.sep
		if !strings.HasPrefix(name, head) || !strings.HasSuffix(name, n.post) || len(name) < len(head)+len(n.post) {
			return "", false
		}
		db = name[len(head) : len(name)-len(n.post)]
	}
	if n.checkAppName(db) != nil {
		return "", false
	}
	return db, true
}
