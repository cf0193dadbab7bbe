package policy

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MintHS256 signs a development token for tenant: the claim claimName (""
// means DefaultTenantClaim) set to tenant, sub "tenantgate-dev", iat now and
// exp now+ttl. It backs `tenantgate token` and tests. It refuses what the
// Verifier would refuse: an invalid tenant id, a short secret, no lifetime.
func MintHS256(secret []byte, claimName, tenant string, ttl time.Duration, now time.Time) (string, error) {
	claimName = cmp.Or(claimName, DefaultTenantClaim)
	switch {
	case !ValidTenantID(tenant):
		return "", fmt.Errorf("%q is not a valid tenant id", tenant)
	case len(secret) < minHMACSecretLen:
		return "", fmt.Errorf("HMAC secret is %d bytes; at least %d are required", len(secret), minHMACSecretLen)
	case ttl <= 0:
		return "", errors.New("token lifetime must be positive")
	}
	switch claimName {
	case "iat", "exp", "sub", "nbf", "iss", "aud":
		return "", fmt.Errorf("tenant claim %q would overwrite a registered claim", claimName)
	}
	claims := jwt.MapClaims{
		claimName: tenant,
		"sub":     "tenantgate-dev",
		"iat":     now.Unix(),
		"exp":     now.Add(ttl).Unix(),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
