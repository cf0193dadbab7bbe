// Package policy decides who a connection belongs to: it verifies the JWT a
// client presents as its datastore password, extracts the tenant id, and
// checks the tenant registry. Protocol engines call Authenticator and never
// look at tokens themselves; every refusal is a *RefusalError whose Reason
// feeds metrics and audit. RateLimiter limits each tenant's requests,
// locally and optionally across sidecars through a shared Redis window.
//
// Threat model. Policy defends against:
//   - forged tokens: signatures are checked with operator-configured keys
//     only (a secret, PEM public keys, a JWKS chosen by kid); keys named by
//     the token itself (jku, x5u, jwk headers) are never used;
//   - algorithm confusion: the key decides the algorithm family, so "none",
//     HS256 signed with an RSA public key, or ES256 against an RSA-only
//     configuration are refused;
//   - expired or not-yet-valid tokens: exp is required, nbf/iss/aud are
//     checked, leeway is small and explicit; cached verifications still
//     expire with their token and are dropped when a JWKS rotation changes
//     the keys they were checked with;
//   - tenant id injection: only ids matching ValidTenantID pass, so an id is
//     safe inside Redis keys, Cypher labels, database names and GUCs;
//   - suspended or deleted tenants: refused at connect, and reported by
//     WatchSuspensions so open sessions can be closed; registry failures
//     refuse (fail closed);
//   - SNI confusion: a server name <slug>.<suffix> must name the token's
//     tenant.
//
// It does not defend against a stolen valid token: the bearer is the tenant
// until exp (keep lifetimes short; there is no revocation list). Nor against
// a writer of the registry table or of its shared Redis cache, which are
// trusted. The rate limiter's shared Redis is trusted too; when it fails,
// the limiter falls back to each sidecar's own limit rather than refusing
// (a rate limit protects capacity, not isolation).
package policy
