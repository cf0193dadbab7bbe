package policy

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tamper rewrites the payload of a signed token with edit, keeping the
// original header and signature.
func tamper(t *testing.T, token string, edit func(jwt.MapClaims)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	edit(claims)
	raw, err = json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// unsigned builds a token from raw header and payload JSON with signature sig.
func unsigned(header, payload, sig string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + sig
}

func TestVerifyAlgorithmsSucceed(t *testing.T) {
	clock := newClock()
	claims := claimsAt(t0, "acme")
	cases := []struct {
		name   string
		cfg    VerifierConfig
		method jwt.SigningMethod
		key    any
	}{
		{"HS256", VerifierConfig{Secret: testSecret}, jwt.SigningMethodHS256, testSecret},
		{"HS384", VerifierConfig{Secret: testSecret}, jwt.SigningMethodHS384, testSecret},
		{"HS512", VerifierConfig{Secret: testSecret}, jwt.SigningMethodHS512, testSecret},
		{"RS256", VerifierConfig{PublicKeysPEM: [][]byte{pubPEM(t, &rsaKeyA().PublicKey)}}, jwt.SigningMethodRS256, rsaKeyA()},
		{"RS512", VerifierConfig{PublicKeysPEM: [][]byte{pubPEM(t, &rsaKeyA().PublicKey)}}, jwt.SigningMethodRS512, rsaKeyA()},
		{"PS256", VerifierConfig{PublicKeysPEM: [][]byte{pubPEM(t, &rsaKeyA().PublicKey)}}, jwt.SigningMethodPS256, rsaKeyA()},
		{"ES256", VerifierConfig{PublicKeysPEM: [][]byte{pubPEM(t, &ecP256().PublicKey)}}, jwt.SigningMethodES256, ecP256()},
		{"ES384", VerifierConfig{PublicKeysPEM: [][]byte{pubPEM(t, &ecP384().PublicKey)}}, jwt.SigningMethodES384, ecP384()},
		{"ES512", VerifierConfig{PublicKeysPEM: [][]byte{pubPEM(t, &ecP521().PublicKey)}}, jwt.SigningMethodES512, ecP521()},
		{"EdDSA", VerifierConfig{PublicKeysPEM: [][]byte{pubPEM(t, edKey().Public())}}, jwt.SigningMethodEdDSA, edKey()},
		{"second PEM key of the family", VerifierConfig{PublicKeysPEM: [][]byte{
			pubPEM(t, &rsaKeyB().PublicKey), pubPEM(t, &ecP256().PublicKey), pubPEM(t, &rsaKeyA().PublicKey),
		}}, jwt.SigningMethodRS256, rsaKeyA()},
		{"PEM bundle in one entry", VerifierConfig{PublicKeysPEM: [][]byte{
			append(pubPEM(t, &rsaKeyB().PublicKey), pubPEM(t, &rsaKeyA().PublicKey)...),
		}}, jwt.SigningMethodRS256, rsaKeyA()},
		{"secret and RSA key together, RSA token", VerifierConfig{Secret: testSecret, PublicKeysPEM: [][]byte{pubPEM(t, &rsaKeyA().PublicKey)}}, jwt.SigningMethodRS256, rsaKeyA()},
		{"allowlist", VerifierConfig{Secret: testSecret, Algorithms: []string{"HS512"}}, jwt.SigningMethodHS512, testSecret},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVerifier(t, tc.cfg, clock)
			id, err := v.Verify(sign(t, tc.method, tc.key, claims, nil))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := Identity{Tenant: "acme", Subject: "user-1", ExpiresAt: t0.Add(time.Hour)}
			if id != want {
				t.Fatalf("identity = %+v, want %+v", id, want)
			}
		})
	}
}

// TestVerifyRefusals covers every refusal reason Verify can give. Each case
// asserts the specific reason, so a check that silently stops refusing, or
// refuses for the wrong reason, fails here.
func TestVerifyRefusals(t *testing.T) {
	clock := newClock()
	rsaPub := pubPEM(t, &rsaKeyA().PublicKey)
	hmacCfg := VerifierConfig{Secret: testSecret}
	rsaCfg := VerifierConfig{PublicKeysPEM: [][]byte{rsaPub}}
	good := claimsAt(t0, "acme")
	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := claimsAt(t0, "acme")
		edit(c)
		return c
	}
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, testSecret, c, nil) }
	validHS := hs(good)

	cases := []struct {
		name  string
		cfg   VerifierConfig
		token string
		want  Reason
	}{
		{"empty token", hmacCfg, "", ReasonMissingToken},
		{"garbage", hmacCfg, "not-a-jwt", ReasonMalformed},
		{"two segments", hmacCfg, "a.b", ReasonMalformed},
		{"bad base64 header", hmacCfg, "!!!." + strings.SplitN(validHS, ".", 2)[1], ReasonMalformed},
		{"header not JSON", hmacCfg, unsigned("nope", `{}`, "x"), ReasonMalformed},
		{"payload not an object", hmacCfg, unsigned(`{"alg":"HS256"}`, `[1,2]`, "x"), ReasonMalformed},
		{"oversized token", hmacCfg, validHS + strings.Repeat("A", maxTokenLen), ReasonMalformed},
		{"alg none", hmacCfg, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good, nil), ReasonBadAlg},
		{"alg none, empty signature by hand", hmacCfg, unsigned(`{"alg":"none","typ":"JWT"}`, `{"tenant_id":"acme","exp":9999999999}`, ""), ReasonBadAlg},
		{"alg missing", hmacCfg, unsigned(`{"typ":"JWT"}`, `{"tenant_id":"acme","exp":9999999999}`, "x"), ReasonBadAlg},
		{"alg unknown", hmacCfg, unsigned(`{"alg":"HS1024"}`, `{"tenant_id":"acme","exp":9999999999}`, "x"), ReasonBadAlg},
		{"HS256 signed with the RSA public key PEM (key confusion)", rsaCfg, sign(t, jwt.SigningMethodHS256, rsaPub, good, nil), ReasonBadAlg},
		{"key confusion with a secret also configured", VerifierConfig{Secret: testSecret, PublicKeysPEM: [][]byte{rsaPub}}, sign(t, jwt.SigningMethodHS256, rsaPub, good, nil), ReasonBadSignature},
		{"ES256 against RSA-only config", rsaCfg, sign(t, jwt.SigningMethodES256, ecP256(), good, nil), ReasonBadAlg},
		{"ES384 against a P-256 key", VerifierConfig{PublicKeysPEM: [][]byte{pubPEM(t, &ecP256().PublicKey)}}, sign(t, jwt.SigningMethodES384, ecP384(), good, nil), ReasonBadAlg},
		{"EdDSA against HMAC config", hmacCfg, sign(t, jwt.SigningMethodEdDSA, edKey(), good, nil), ReasonBadAlg},
		{"RS256 against HMAC config", hmacCfg, sign(t, jwt.SigningMethodRS256, rsaKeyA(), good, nil), ReasonBadAlg},
		{"PS256 outside the allowlist", VerifierConfig{PublicKeysPEM: [][]byte{rsaPub}, Algorithms: []string{"RS256"}}, sign(t, jwt.SigningMethodPS256, rsaKeyA(), good, nil), ReasonBadAlg},
		{"embedded jwk header naming the signer's key", rsaCfg, sign(t, jwt.SigningMethodRS256, rsaKeyB(), good, map[string]any{"jwk": map[string]any{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(rsaKeyB().N.Bytes()), "e": "AQAB"}}), ReasonBadSignature},
		{"jku header pointing elsewhere", rsaCfg, sign(t, jwt.SigningMethodRS256, rsaKeyB(), good, map[string]any{"jku": "https://evil.example/jwks.json"}), ReasonBadSignature},
		{"RS256 signed by another key", rsaCfg, sign(t, jwt.SigningMethodRS256, rsaKeyB(), good, nil), ReasonBadSignature},
		{"HS256 with another secret", hmacCfg, sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), good, nil), ReasonBadSignature},
		{"tampered payload: tenant changed", hmacCfg, tamper(t, validHS, func(c jwt.MapClaims) { c["tenant_id"] = "victim" }), ReasonBadSignature},
		{"tampered payload: exp extended", rsaCfg, tamper(t, sign(t, jwt.SigningMethodRS256, rsaKeyA(), good, nil), func(c jwt.MapClaims) { c["exp"] = t0.Add(1000 * time.Hour).Unix() }), ReasonBadSignature},
		{"signature stripped", hmacCfg, validHS[:strings.LastIndex(validHS, ".")+1], ReasonBadSignature},
		{"crit header", hmacCfg, sign(t, jwt.SigningMethodHS256, testSecret, good, map[string]any{"crit": []string{"exp"}}), ReasonMalformed},
		{"kid not a string", hmacCfg, sign(t, jwt.SigningMethodHS256, testSecret, good, map[string]any{"kid": 7}), ReasonMalformed},
		{"expired", hmacCfg, hs(with(func(c jwt.MapClaims) { c["exp"] = t0.Add(-time.Second).Unix() })), ReasonExpired},
		{"expires exactly now", hmacCfg, hs(with(func(c jwt.MapClaims) { c["exp"] = t0.Unix() })), ReasonExpired},
		{"no exp", hmacCfg, hs(with(func(c jwt.MapClaims) { delete(c, "exp") })), ReasonNoExpiry},
		{"exp not a number", hmacCfg, hs(with(func(c jwt.MapClaims) { c["exp"] = "tomorrow" })), ReasonMalformed},
		{"nbf in the future", hmacCfg, hs(with(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Minute).Unix() })), ReasonNotYetValid},
		{"leeway too small for a future nbf", VerifierConfig{Secret: testSecret, Leeway: 10 * time.Second}, hs(with(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Minute).Unix() })), ReasonNotYetValid},
		{"expired beyond leeway", VerifierConfig{Secret: testSecret, Leeway: 10 * time.Second}, hs(with(func(c jwt.MapClaims) { c["exp"] = t0.Add(-11 * time.Second).Unix() })), ReasonExpired},
		{"wrong issuer", VerifierConfig{Secret: testSecret, Issuer: "https://idp"}, hs(with(func(c jwt.MapClaims) { c["iss"] = "https://evil" })), ReasonBadIssuer},
		{"missing issuer", VerifierConfig{Secret: testSecret, Issuer: "https://idp"}, validHS, ReasonBadIssuer},
		{"issuer not a string", VerifierConfig{Secret: testSecret, Issuer: "https://idp"}, hs(with(func(c jwt.MapClaims) { c["iss"] = []string{"https://idp"} })), ReasonBadIssuer},
		{"wrong audience", VerifierConfig{Secret: testSecret, Audience: "tenantgate"}, hs(with(func(c jwt.MapClaims) { c["aud"] = "other" })), ReasonBadAudience},
		{"audience array without ours", VerifierConfig{Secret: testSecret, Audience: "tenantgate"}, hs(with(func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} })), ReasonBadAudience},
		{"missing audience", VerifierConfig{Secret: testSecret, Audience: "tenantgate"}, validHS, ReasonBadAudience},
		{"tenant claim missing", hmacCfg, hs(with(func(c jwt.MapClaims) { delete(c, "tenant_id") })), ReasonNoTenantClaim},
		{"tenant claim under another name", VerifierConfig{Secret: testSecret, TenantClaim: "org"}, validHS, ReasonNoTenantClaim},
		{"tenant claim array", hmacCfg, hs(with(func(c jwt.MapClaims) { c["tenant_id"] = []string{"acme"} })), ReasonBadTenantClaim},
		{"tenant claim number", hmacCfg, hs(with(func(c jwt.MapClaims) { c["tenant_id"] = 42 })), ReasonBadTenantClaim},
		{"tenant claim bool", hmacCfg, hs(with(func(c jwt.MapClaims) { c["tenant_id"] = true })), ReasonBadTenantClaim},
		{"tenant claim object", hmacCfg, hs(with(func(c jwt.MapClaims) { c["tenant_id"] = map[string]any{"id": "acme"} })), ReasonBadTenantClaim},
		{"tenant claim null", hmacCfg, hs(with(func(c jwt.MapClaims) { c["tenant_id"] = nil })), ReasonBadTenantClaim},
		{"tenant claim empty", hmacCfg, hs(with(func(c jwt.MapClaims) { c["tenant_id"] = "" })), ReasonBadTenantClaim},
		{"tenant claim 64 chars", hmacCfg, hs(with(func(c jwt.MapClaims) { c["tenant_id"] = strings.Repeat("a", 64) })), ReasonBadTenantClaim},
		{"tenant claim with colon", hmacCfg, hs(with(func(c jwt.MapClaims) { c["tenant_id"] = "acme:other" })), ReasonBadTenantClaim},
		{"tenant claim with star", hmacCfg, hs(with(func(c jwt.MapClaims) { c["tenant_id"] = "acme*" })), ReasonBadTenantClaim},
		{"tenant claim with space", hmacCfg, hs(with(func(c jwt.MapClaims) { c["tenant_id"] = "acme other" })), ReasonBadTenantClaim},
		{"tenant claim with newline", hmacCfg, hs(with(func(c jwt.MapClaims) { c["tenant_id"] = "acme\n" })), ReasonBadTenantClaim},
		{"tenant claim starting with dash", hmacCfg, hs(with(func(c jwt.MapClaims) { c["tenant_id"] = "-acme" })), ReasonBadTenantClaim},
		{"sub not a string", hmacCfg, hs(with(func(c jwt.MapClaims) { c["sub"] = 12 })), ReasonMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newTestVerifier(t, tc.cfg, clock)
			_, err := v.Verify(tc.token)
			wantReason(t, err, tc.want)
			if tc.token != "" && len(tc.token) > 20 && strings.Contains(err.Error(), tc.token) {
				t.Fatalf("error echoes the token: %v", err)
			}
		})
	}
}

func TestVerifyClaimsAccepted(t *testing.T) {
	clock := newClock()
	with := func(claim string, edit func(jwt.MapClaims)) string {
		c := claimsFor(t0, claim, "acme")
		edit(c)
		return sign(t, jwt.SigningMethodHS256, testSecret, c, nil)
	}
	noop := func(jwt.MapClaims) {}
	cases := []struct {
		name       string
		cfg        VerifierConfig
		token      string
		wantTenant string
	}{
		{"leeway accepts slightly expired", VerifierConfig{Leeway: 10 * time.Second}, with("tenant_id", func(c jwt.MapClaims) { c["exp"] = t0.Add(-5 * time.Second).Unix() }), "acme"},
		{"leeway accepts slightly early nbf", VerifierConfig{Leeway: 10 * time.Second}, with("tenant_id", func(c jwt.MapClaims) { c["nbf"] = t0.Add(5 * time.Second).Unix() }), "acme"},
		{"nbf in the past", VerifierConfig{}, with("tenant_id", func(c jwt.MapClaims) { c["nbf"] = t0.Add(-time.Minute).Unix() }), "acme"},
		{"issuer matches", VerifierConfig{Issuer: "https://idp"}, with("tenant_id", func(c jwt.MapClaims) { c["iss"] = "https://idp" }), "acme"},
		{"audience string", VerifierConfig{Audience: "tenantgate"}, with("tenant_id", func(c jwt.MapClaims) { c["aud"] = "tenantgate" }), "acme"},
		{"audience array containing ours", VerifierConfig{Audience: "tenantgate"}, with("tenant_id", func(c jwt.MapClaims) { c["aud"] = []string{"other", "tenantgate"} }), "acme"},
		{"audience present but not configured", VerifierConfig{}, with("tenant_id", func(c jwt.MapClaims) { c["aud"] = "anything" }), "acme"},
		{"custom tenant claim", VerifierConfig{TenantClaim: "org"}, with("org", noop), "acme"},
		{"63-char tenant", VerifierConfig{}, with("tenant_id", func(c jwt.MapClaims) { c["tenant_id"] = strings.Repeat("a", 63) }), strings.Repeat("a", 63)},
		{"UUID tenant", VerifierConfig{}, with("tenant_id", func(c jwt.MapClaims) { c["tenant_id"] = "9f0c2b1e-3c4d-4e5f-8a9b-0c1d2e3f4a5b" }), "9f0c2b1e-3c4d-4e5f-8a9b-0c1d2e3f4a5b"},
		{"no sub", VerifierConfig{}, with("tenant_id", func(c jwt.MapClaims) { delete(c, "sub") }), "acme"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Secret = testSecret
			v := newTestVerifier(t, tc.cfg, clock)
			id, err := v.Verify(tc.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.Tenant != tc.wantTenant {
				t.Fatalf("tenant = %q, want %q", id.Tenant, tc.wantTenant)
			}
		})
	}
}

func TestNewVerifierConfigErrors(t *testing.T) {
	rsaPub := pubPEM(t, &rsaKeyA().PublicKey)
	weakRSA := pubPEM(t, &mustRSA(1024).PublicKey)
	privDER, err := x509MarshalPKCS8(rsaKeyA())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  VerifierConfig
		want string // substring of the error
	}{
		{"no key at all", VerifierConfig{}, "no verification key"},
		{"short secret", VerifierConfig{Secret: []byte("short")}, "at least 32"},
		{"unparsable second PEM", VerifierConfig{PublicKeysPEM: [][]byte{rsaPub, []byte("hello")}}, "PEM #1"},
		{"corrupt PEM body", VerifierConfig{PublicKeysPEM: [][]byte{[]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")}}, "PEM #0"},
		{"private key PEM", VerifierConfig{PublicKeysPEM: [][]byte{privDER}}, "private key"},
		{"weak RSA key", VerifierConfig{PublicKeysPEM: [][]byte{weakRSA}}, "2048"},
		{"unknown algorithm", VerifierConfig{Secret: testSecret, Algorithms: []string{"none"}}, `"none" is not supported`},
		{"algorithm without a key", VerifierConfig{Secret: testSecret, Algorithms: []string{"HS256", "RS256"}}, "RS256"},
		{"negative leeway", VerifierConfig{Secret: testSecret, Leeway: -time.Second}, "leeway -1s is negative"},
		{"negative JWKS refresh", VerifierConfig{JWKSURL: "http://127.0.0.1:1/jwks", JWKSRefresh: -time.Second}, "JWKS refresh -1s is negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(t.Context(), tc.cfg)
			if err == nil {
				v.Close()
				t.Fatal("NewVerifier succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// x509MarshalPKCS8 PEM-encodes a private key, as an operator might paste by mistake.
func x509MarshalPKCS8(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func TestVerifyCertificatePEM(t *testing.T) {
	k := ecP256()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	v := newTestVerifier(t, VerifierConfig{PublicKeysPEM: [][]byte{certPEM}}, newClock())
	if _, err := v.Verify(sign(t, jwt.SigningMethodES256, k, claimsAt(t0, "acme"), nil)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}
