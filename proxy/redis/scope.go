package redis

import (
	"bytes"
	"strings"
)

// DefaultKeyPrefix is the key prefix template when none is configured.
const DefaultKeyPrefix = "t:{tenant}:"

// tenantScope is one tenant's namespace on the upstream: every key and
// channel name gets prefix; glob patterns get globPrefix, the prefix with
// its glob metacharacters escaped so that it only ever matches itself.
type tenantScope struct {
	tenant     string
	prefix     []byte
	globPrefix []byte
}

func newTenantScope(template, tenant string) *tenantScope {
	prefix := strings.ReplaceAll(template, "{tenant}", tenant)
	return &tenantScope{tenant: tenant, prefix: []byte(prefix), globPrefix: escapeGlob([]byte(prefix))}
}

// escapeGlob escapes the characters Redis's glob matcher (stringmatchlen)
// treats specially.
func escapeGlob(s []byte) []byte {
	out := make([]byte, 0, len(s)+4)
	for _, c := range s {
		switch c {
		case '*', '?', '[', ']', '\\':
			out = append(out, '\\')
		}
		out = append(out, c)
	}
	return out
}

// key returns name inside the tenant's namespace.
func (t *tenantScope) key(name []byte) []byte {
	return append(append(make([]byte, 0, len(t.prefix)+len(name)), t.prefix...), name...)
}

// pattern returns a glob pattern that matches only the tenant's names that
// pattern matches.
func (t *tenantScope) pattern(pattern []byte) []byte {
	return append(append(make([]byte, 0, len(t.globPrefix)+len(pattern)), t.globPrefix...), pattern...)
}

// strip removes the tenant prefix from an upstream name; ok is false when
// name is not the tenant's.
func (t *tenantScope) strip(name []byte) (stripped []byte, ok bool) {
	if !bytes.HasPrefix(name, t.prefix) {
		return name, false
	}
	return name[len(t.prefix):], true
}

// stripPattern removes the escaped prefix from a pattern the proxy scoped.
func (t *tenantScope) stripPattern(pattern []byte) (stripped []byte, ok bool) {
	if !bytes.HasPrefix(pattern, t.globPrefix) {
		return pattern, false
	}
	return pattern[len(t.globPrefix):], true
}
