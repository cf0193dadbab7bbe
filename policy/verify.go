package policy

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Verifier defaults.
const (
	DefaultTenantClaim           = "tenant_id"
	DefaultJWKSRefresh           = time.Hour
	DefaultJWKSUnknownKIDRefresh = 5 * time.Minute
	DefaultCacheSize             = 10000

	// maxTokenLen bounds the work an unauthenticated client can make us do
	// (base64 and JSON decoding happen before the signature is checked).
	maxTokenLen = 16 << 10
)

// VerifierConfig configures a Verifier. At least one key source (Secret,
// PublicKeysPEM or JWKSURL) is required. The algorithms a token may use are
// derived from the configured keys, never from the token.
type VerifierConfig struct {
	// Secret is the HS256/384/512 shared secret (at least 32 bytes).
	Secret []byte
	// PublicKeysPEM are RSA, ECDSA (P-256/384/521) or Ed25519 public keys,
	// as "PUBLIC KEY", "RSA PUBLIC KEY" or "CERTIFICATE" PEM blocks.
	PublicKeysPEM [][]byte
	// JWKSURL is a JWK Set endpoint; its keys are chosen by the token's kid.
	JWKSURL string
	// JWKSRefresh is the periodic JWKS refresh interval (default 1h).
	JWKSRefresh time.Duration
	// JWKSUnknownKIDRefresh is the minimum interval between refreshes
	// triggered by a token whose kid is not in the key set (default 5m), so
	// that made-up kids cannot turn the sidecar into a JWKS flooder.
	JWKSUnknownKIDRefresh time.Duration
	// JWKSHTTPClient fetches the JWKS (default: a client with a 10s timeout).
	JWKSHTTPClient *http.Client
	// Issuer and Audience, when set, must match the iss and aud claims.
	Issuer, Audience string
	// TenantClaim names the claim that carries the tenant id (default tenant_id).
	TenantClaim string
	// Leeway tolerates clock skew on exp and nbf.
	Leeway time.Duration
	// CacheSize bounds the verification cache (default 10000; negative disables it).
	CacheSize int
	// Algorithms optionally narrows the accepted algorithms. Every entry must
	// be one the configured keys can verify.
	Algorithms []string
	// Now is the clock (default time.Now); tests inject their own.
	Now func() time.Time
	// Logger receives JWKS refresh failures (default slog.Default()).
	Logger *slog.Logger
}

// Verifier checks tokens and extracts the tenant they prove. It is safe for
// concurrent use.
type Verifier struct {
	static      *staticKeys
	jwks        *jwksSource // nil without JWKSURL
	allowed     map[string]bool
	parser      *jwt.Parser
	cache       *verifyCache // nil when disabled
	issuer      string
	audience    string
	tenantClaim string
	leeway      time.Duration
	now         func() time.Time
	stop        context.CancelFunc
}

// NewVerifier builds a Verifier. ctx bounds the initial JWKS fetch and the
// background refresh, which Close also stops.
func NewVerifier(ctx context.Context, cfg VerifierConfig) (*Verifier, error) {
	if len(cfg.Secret) == 0 && len(cfg.PublicKeysPEM) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("no verification key: configure a secret, public keys or a JWKS URL")
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"leeway", cfg.Leeway}, {"JWKS refresh", cfg.JWKSRefresh}, {"JWKS unknown-kid refresh", cfg.JWKSUnknownKIDRefresh}} {
		if d.d < 0 {
			return nil, fmt.Errorf("%s %s is negative", d.name, d.d)
		}
	}
	static, err := newStaticKeys(cfg.Secret, cfg.PublicKeysPEM)
	if err != nil {
		return nil, err
	}
	available := static.algorithms()
	if cfg.JWKSURL != "" {
		available = append(available, asymmetricAlgs()...)
	}
	allowed, err := allowedAlgorithms(available, cfg.Algorithms)
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		static:      static,
		allowed:     allowed,
		parser:      jwt.NewParser(jwt.WithoutClaimsValidation()), // claims are checked by checkClaims, with precise reasons
		issuer:      cfg.Issuer,
		audience:    cfg.Audience,
		tenantClaim: cmp.Or(cfg.TenantClaim, DefaultTenantClaim),
		leeway:      cfg.Leeway,
		now:         cfg.Now,
		stop:        func() {},
	}
	if v.now == nil {
		v.now = time.Now
	}
	switch size := cfg.CacheSize; {
	case size == 0:
		v.cache = newVerifyCache(DefaultCacheSize)
	case size > 0:
		v.cache = newVerifyCache(size)
	}
	if cfg.JWKSURL != "" {
		logger := cfg.Logger
		if logger == nil {
			logger = slog.Default()
		}
		jctx, stop := context.WithCancel(ctx)
		v.jwks, err = newJWKSSource(jctx, jwksOptions{
			url:             cfg.JWKSURL,
			client:          cfg.JWKSHTTPClient,
			refresh:         cmp.Or(cfg.JWKSRefresh, DefaultJWKSRefresh),
			unknownKIDEvery: cmp.Or(cfg.JWKSUnknownKIDRefresh, DefaultJWKSUnknownKIDRefresh),
			logger:          logger,
		})
		if err != nil {
			stop() // jwkset may already have started its refresh goroutine
			return nil, err
		}
		v.stop = stop
	}
	return v, nil
}

// allowedAlgorithms intersects what the keys can verify with the operator's
// optional allowlist; a listed algorithm no key can verify is a config error.
func allowedAlgorithms(available, allowlist []string) (map[string]bool, error) {
	allowed := make(map[string]bool)
	if len(allowlist) == 0 {
		for _, alg := range available {
			allowed[alg] = true
		}
		return allowed, nil
	}
	for _, alg := range allowlist {
		if familyOf(alg) == "" {
			return nil, fmt.Errorf("algorithm %q is not supported", alg)
		}
		if !slices.Contains(available, alg) {
			return nil, fmt.Errorf("algorithm %s is allowed but no configured key can verify it", alg)
		}
		allowed[alg] = true
	}
	return allowed, nil
}

// Close stops the JWKS background refresh. It is safe to call more than once.
func (v *Verifier) Close() { v.stop() }

// Verify checks token and returns the identity it proves. Every error is a
// *RefusalError.
func (v *Verifier) Verify(token string) (Identity, error) {
	if token == "" {
		return Identity{}, Refuse(ReasonMissingToken, "no token was presented")
	}
	if len(token) > maxTokenLen {
		return Identity{}, Refuse(ReasonMalformed, "token is longer than %d bytes", maxTokenLen)
	}
	now := v.now()
	// Read the key generation before any key is looked up, so a rotation
	// that races with this verification invalidates what we cache.
	gen := v.keyGeneration()
	digest := sha256.Sum256([]byte(token))
	if v.cache != nil {
		switch id, res := v.cache.lookup(digest, now, gen); res {
		case cacheHit:
			return id, nil
		case cacheExpired:
			return Identity{}, Refuse(ReasonExpired, "token expired")
		}
	}
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(token, claims, v.keyFunc); err != nil {
		return Identity{}, classifyParseError(err)
	}
	id, notAfter, err := v.checkClaims(claims, now)
	if err != nil {
		return Identity{}, err
	}
	if v.cache != nil {
		v.cache.add(digest, verified{identity: id, notAfter: notAfter, keyGen: gen})
	}
	return id, nil
}

func (v *Verifier) keyGeneration() uint64 {
	if v.jwks == nil {
		return 0
	}
	return v.jwks.generation()
}

// keyFunc picks the keys that may verify t. The token's alg only selects
// among keys of the family the operator configured; it can never turn a
// public key into an HMAC secret.
func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if !v.allowed[alg] {
		return nil, Refuse(ReasonBadAlg, "algorithm %s is not accepted", quoteShort(alg))
	}
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515 §4.1.11: a verifier must refuse critical extensions it
		// does not understand, and we understand none.
		return nil, Refuse(ReasonMalformed, "critical header extensions are not supported")
	}
	var kid string
	if raw, ok := t.Header["kid"]; ok {
		s, ok := raw.(string)
		if !ok {
			return nil, Refuse(ReasonMalformed, "kid header is not a string")
		}
		kid = s
	}
	keys := v.static.forAlg(alg)
	if v.jwks != nil {
		if kid != "" {
			key, err := v.jwks.key(kid, alg)
			if err == nil {
				return key, nil
			}
			// A kid the JWKS does not know may still name a PEM key
			// (PEM keys carry no kid); only without one do we refuse.
			if len(keys) == 0 || ReasonOf(err) != ReasonUnknownKID {
				return nil, err
			}
		} else {
			keys = append(keys, v.jwks.forAlg(alg)...)
		}
	}
	if len(keys) == 0 {
		if v.jwks != nil {
			return nil, Refuse(ReasonUnknownKID, "token has no kid and no loaded key can verify %s", alg)
		}
		return nil, Refuse(ReasonBadAlg, "no configured key can verify %s", alg)
	}
	set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = k
	}
	return set, nil
}

// classifyParseError maps a jwt/v5 error to a refusal. Our own refusals from
// keyFunc travel inside jwt's error and win.
func classifyParseError(err error) *RefusalError {
	var re *RefusalError
	switch {
	case errors.As(err, &re):
		return re
	case errors.Is(err, jwt.ErrTokenMalformed):
		return Refuse(ReasonMalformed, "token is not a well-formed JWT")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return Refuse(ReasonBadSignature, "signature does not verify")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// jwt refuses before calling keyFunc when alg is absent or unknown.
		return Refuse(ReasonBadAlg, "token algorithm is missing or unsupported")
	default:
		return Refuse(ReasonMalformed, "token could not be parsed")
	}
}

// checkClaims validates the registered claims and extracts the identity.
// It runs only after the signature verified. It returns the instant from
// which the token is expired (exp + leeway), which bounds its cache entry.
func (v *Verifier) checkClaims(c jwt.MapClaims, now time.Time) (Identity, time.Time, error) {
	exp, err := c.GetExpirationTime()
	if err != nil {
		return Identity{}, time.Time{}, Refuse(ReasonMalformed, "exp is not a number")
	}
	if exp == nil {
		return Identity{}, time.Time{}, Refuse(ReasonNoExpiry, "token has no exp claim")
	}
	notAfter := exp.Add(v.leeway)
	if !now.Before(notAfter) {
		return Identity{}, time.Time{}, Refuse(ReasonExpired, "token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	nbf, err := c.GetNotBefore()
	if err != nil {
		return Identity{}, time.Time{}, Refuse(ReasonMalformed, "nbf is not a number")
	}
	if nbf != nil && now.Before(nbf.Add(-v.leeway)) {
		return Identity{}, time.Time{}, Refuse(ReasonNotYetValid, "token is not valid before %s", nbf.UTC().Format(time.RFC3339))
	}
	if v.issuer != "" {
		if iss, err := c.GetIssuer(); err != nil || iss != v.issuer {
			return Identity{}, time.Time{}, Refuse(ReasonBadIssuer, "token issuer is not %q", v.issuer)
		}
	}
	if v.audience != "" {
		if aud, err := c.GetAudience(); err != nil || !slices.Contains(aud, v.audience) {
			return Identity{}, time.Time{}, Refuse(ReasonBadAudience, "token audience does not include %q", v.audience)
		}
	}
	sub, err := c.GetSubject()
	if err != nil {
		return Identity{}, time.Time{}, Refuse(ReasonMalformed, "sub is not a string")
	}
	raw, ok := c[v.tenantClaim]
	if !ok {
		return Identity{}, time.Time{}, Refuse(ReasonNoTenantClaim, "token has no %q claim", v.tenantClaim)
	}
	tenant, ok := raw.(string)
	if !ok {
		return Identity{}, time.Time{}, Refuse(ReasonBadTenantClaim, "%q claim is not a string", v.tenantClaim)
	}
	if !ValidTenantID(tenant) {
		// The value is not echoed: it is attacker-chosen and may be long.
		return Identity{}, time.Time{}, Refuse(ReasonBadTenantClaim, "%q claim is not a valid tenant id", v.tenantClaim)
	}
	return Identity{Tenant: tenant, Subject: sub, ExpiresAt: exp.UTC()}, notAfter, nil
}
