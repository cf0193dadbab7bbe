package policy

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Reason is a stable, machine-readable code for why a credential or a tenant
// was refused. Reasons become metric label values and audit fields, so the set
// is small and fixed.
type Reason string

// Refusal reasons. Their string values are part of the metrics and audit
// contract; do not rename them.
const (
	ReasonMissingToken    Reason = "missing_token"
	ReasonMalformed       Reason = "malformed"
	ReasonExpired         Reason = "expired"
	ReasonNoExpiry        Reason = "no_exp"
	ReasonNotYetValid     Reason = "not_yet_valid"
	ReasonBadSignature    Reason = "bad_signature"
	ReasonUnknownKID      Reason = "unknown_kid"
	ReasonBadAlg          Reason = "bad_alg"
	ReasonBadAudience     Reason = "bad_audience"
	ReasonBadIssuer       Reason = "bad_issuer"
	ReasonNoTenantClaim   Reason = "no_tenant_claim"
	ReasonBadTenantClaim  Reason = "bad_tenant_claim"
	ReasonUnknownTenant   Reason = "unknown_tenant"
	ReasonSuspendedTenant Reason = "suspended_tenant"
	ReasonTenantMismatch  Reason = "tenant_mismatch"
	ReasonRegistryError   Reason = "registry_unavailable"
)

// RefusalError is returned whenever policy refuses a token or a tenant. Callers
// answer the client in its protocol's error format with Error() and count
// Reason in metrics and audit.
type RefusalError struct {
	Reason Reason
	Detail string
}

func (e *RefusalError) Error() string {
	if e.Detail == "" {
		return string(e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.Reason, e.Detail)
}

// Refuse builds a RefusalError.
func Refuse(reason Reason, format string, args ...any) *RefusalError {
	return &RefusalError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf extracts the refusal reason of err, or "" when err is not a refusal.
func ReasonOf(err error) Reason {
	var re *RefusalError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

var tenantIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// ValidTenantID reports whether id may be used as a tenant id. Only ids of
// this shape are ever accepted, which keeps them safe to embed in Redis key
// prefixes, Cypher labels, database names and PostgreSQL settings.
func ValidTenantID(id string) bool {
	return tenantIDPattern.MatchString(id)
}

// Identity is what a verified token proves about its bearer.
type Identity struct {
	Tenant    string    // tenant id, always ValidTenantID
	Subject   string    // the token's sub claim, if any
	ExpiresAt time.Time // the token's exp claim
}

// Tenant is one entry of the tenant registry.
type Tenant struct {
	ID     string `json:"id" yaml:"id"`
	Slug   string `json:"slug" yaml:"slug"`
	Active bool   `json:"active" yaml:"active"`
}

// Registry answers whether a tenant exists and is active. Lookups of unknown
// tenants return a RefusalError with ReasonUnknownTenant; a failing backing
// store returns ReasonRegistryError, so callers fail closed.
type Registry interface {
	ByID(ctx context.Context, id string) (Tenant, error)
	BySlug(ctx context.Context, slug string) (Tenant, error)
}
