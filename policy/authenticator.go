package policy

import (
	"context"
	"strings"
)

// Authenticator turns a presented token into an Identity: the token must
// verify and its tenant must be registered and active. It is safe for
// concurrent use.
type Authenticator struct {
	verifier *Verifier
	registry Registry
}

// NewAuthenticator combines a verifier and a registry. A nil registry means
// no registry check: every tenant whose token verifies is accepted, and an
// SNI slug must equal the tenant id.
func NewAuthenticator(v *Verifier, reg Registry) *Authenticator {
	return &Authenticator{verifier: v, registry: reg}
}

// Authenticate verifies token and checks its tenant in the registry. Every
// error is a *RefusalError: the Verify reasons, ReasonUnknownTenant,
// ReasonSuspendedTenant or ReasonRegistryError.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Identity, error) {
	id, err := a.verifier.Verify(token)
	if err != nil {
		return Identity{}, err
	}
	if a.registry == nil {
		return id, nil
	}
	t, err := a.registry.ByID(ctx, id.Tenant)
	if err != nil {
		return Identity{}, asRefusal(err)
	}
	if !t.Active {
		return Identity{}, Refuse(ReasonSuspendedTenant, "tenant %s is suspended", id.Tenant)
	}
	return id, nil
}

// AuthenticateSNI is Authenticate plus a check of the TLS server name: when
// serverName is <slug>.<suffix> (compared case-insensitively, as DNS names
// are), the slug must resolve to the token's tenant, else the refusal is
// ReasonTenantMismatch. A server name outside suffix, an empty one, or an
// empty suffix is not checked, so clients that connect by IP keep working.
func (a *Authenticator) AuthenticateSNI(ctx context.Context, token, serverName, suffix string) (Identity, error) {
	id, err := a.Authenticate(ctx, token)
	if err != nil {
		return Identity{}, err
	}
	slug, ok := sniSlug(serverName, suffix)
	if !ok {
		return id, nil
	}
	if slug == "" {
		return Identity{}, Refuse(ReasonTenantMismatch, "server name does not name a single tenant slug")
	}
	tenant := slug
	if a.registry != nil {
		t, err := a.registry.BySlug(ctx, slug)
		switch {
		case ReasonOf(err) == ReasonUnknownTenant:
			return Identity{}, Refuse(ReasonTenantMismatch, "server name names unknown tenant slug %s", quoteShort(slug))
		case err != nil:
			return Identity{}, asRefusal(err)
		}
		tenant = t.ID
	}
	if tenant != id.Tenant {
		return Identity{}, Refuse(ReasonTenantMismatch, "server name is for another tenant than the token")
	}
	return id, nil
}

// sniSlug extracts the slug of serverName under suffix. ok is false when the
// name is not under suffix (not checked); slug is "" when the name is under
// suffix but its first part is not one label (refused).
func sniSlug(serverName, suffix string) (slug string, ok bool) {
	name := strings.ToLower(strings.TrimSuffix(serverName, "."))
	suffix = strings.ToLower(strings.Trim(suffix, "."))
	if name == "" || suffix == "" {
		return "", false
	}
	prefix, under := strings.CutSuffix(name, "."+suffix)
	if !under {
		return "", false
	}
	if prefix == "" || strings.Contains(prefix, ".") {
		return "", true
	}
	return prefix, true
}

// asRefusal keeps refusals as they are and turns any other registry error
// into ReasonRegistryError, so callers always fail closed with a reason.
func asRefusal(err error) error {
	if ReasonOf(err) != "" {
		return err
	}
	return Refuse(ReasonRegistryError, "tenant registry failed")
}
