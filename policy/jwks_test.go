package policy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// jwksServer serves a JWK Set that a test can rotate, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []jwkset.JWKMarshal
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body, err := json.Marshal(jwkset.JWKSMarshal{Keys: s.keys})
		s.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve replaces the served key set.
func (s *jwksServer) serve(t *testing.T, keys ...jwkset.JWKMarshal) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

// jwk describes a public key as a JWK with kid and (optional) alg.
func jwk(t *testing.T, pub any, kid string, alg jwkset.ALG) jwkset.JWKMarshal {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	return j.Marshal()
}

// encryptionKey describes pub as a JWK for encryption (use "enc").
func encryptionKey(t *testing.T, pub any, kid string) jwkset.JWKMarshal {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseEnc}})
	if err != nil {
		t.Fatal(err)
	}
	return j.Marshal()
}

func TestJWKSRotation(t *testing.T) {
	srv := newJWKSServer(t)
	srv.serve(t, jwk(t, &rsaKeyA().PublicKey, "A", jwkset.AlgRS256))
	clock := newClock()
	v := newTestVerifier(t, VerifierConfig{
		JWKSURL:               srv.URL,
		JWKSRefresh:           time.Hour, // only unknown kids refresh during the test
		JWKSUnknownKIDRefresh: 300 * time.Millisecond,
	}, clock)
	tokenFor := func(key any, kid string) string {
		return sign(t, jwt.SigningMethodRS256, key, claimsAt(t0, "acme"), map[string]any{"kid": kid})
	}
	tokenA := tokenFor(rsaKeyA(), "A")
	if _, err := v.Verify(tokenA); err != nil {
		t.Fatalf("key A: %v", err)
	}

	// The IdP rotates to key B. The first kid-B token triggers a refresh
	// (the limiter has a token to spend) and verifies.
	srv.serve(t, jwk(t, &rsaKeyB().PublicKey, "B", jwkset.AlgRS256))
	if _, err := v.Verify(tokenFor(rsaKeyB(), "B")); err != nil {
		t.Fatalf("key B after rotation: %v", err)
	}

	// Key A is gone from the refreshed set. Even the token verified (and
	// cached) before the rotation is refused now: the key set changed.
	start := time.Now()
	_, err := v.Verify(tokenA)
	wantReason(t, err, ReasonUnknownKID)
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("unknown kid took %s", waited)
	}
	_, err = v.Verify(tokenFor(rsaKeyA(), "A"))
	wantReason(t, err, ReasonUnknownKID)
}

func TestJWKSUnknownKIDRateLimited(t *testing.T) {
	srv := newJWKSServer(t)
	srv.serve(t, jwk(t, &rsaKeyA().PublicKey, "A", jwkset.AlgRS256))
	v := newTestVerifier(t, VerifierConfig{JWKSURL: srv.URL, JWKSUnknownKIDRefresh: time.Hour}, newClock())
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches at start, want 1", n)
	}
	for i := range 20 {
		start := time.Now()
		_, err := v.Verify(sign(t, jwt.SigningMethodRS256, rsaKeyA(), claimsAt(t0, "acme"), map[string]any{"kid": "made-up-" + string(rune('a'+i))}))
		wantReason(t, err, ReasonUnknownKID)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("unknown kid #%d blocked for %s", i, d)
		}
	}
	// One refresh for the first unknown kid, then the limiter holds.
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after 20 unknown kids, want 2", n)
	}
}

func TestJWKSKeySelection(t *testing.T) {
	srv := newJWKSServer(t)
	srv.serve(t,
		jwk(t, &rsaKeyA().PublicKey, "rsa", jwkset.AlgRS256),
		jwk(t, &ecP256().PublicKey, "ec", jwkset.AlgES256),
		jwk(t, edKey().Public(), "ed", jwkset.AlgEdDSA),
		jwk(t, &rsaKeyB().PublicKey, "rsa-any-alg", ""),
		encryptionKey(t, &rsaKeyA().PublicKey, "rsa-enc"),
	)
	clock := newClock()
	v := newTestVerifier(t, VerifierConfig{JWKSURL: srv.URL, JWKSUnknownKIDRefresh: time.Hour}, clock)
	claims := claimsAt(t0, "acme")
	kid := func(k string) map[string]any { return map[string]any{"kid": k} }

	ok := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		header map[string]any
	}{
		{"RS256 by kid", jwt.SigningMethodRS256, rsaKeyA(), kid("rsa")},
		{"ES256 by kid", jwt.SigningMethodES256, ecP256(), kid("ec")},
		{"EdDSA by kid", jwt.SigningMethodEdDSA, edKey(), kid("ed")},
		{"PS256 on a key without alg", jwt.SigningMethodPS256, rsaKeyB(), kid("rsa-any-alg")},
		{"no kid: every key of the family is tried", jwt.SigningMethodES256, ecP256(), nil},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := v.Verify(sign(t, tc.method, tc.key, claims, tc.header)); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}

	refused := []struct {
		name  string
		token string
		want  Reason
	}{
		{"alg differs from the key's alg", sign(t, jwt.SigningMethodPS256, rsaKeyA(), claims, kid("rsa")), ReasonBadAlg},
		{"ES256 token naming the RSA key", sign(t, jwt.SigningMethodES256, ecP256(), claims, kid("rsa-any-alg")), ReasonBadAlg},
		{"HS256 signed with a JWKS public key", sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("k", 32)), claims, kid("rsa")), ReasonBadAlg},
		{"encryption key", sign(t, jwt.SigningMethodRS256, rsaKeyA(), claims, kid("rsa-enc")), ReasonBadAlg},
		{"right kid, wrong signer", sign(t, jwt.SigningMethodRS256, rsaKeyB(), claims, kid("rsa")), ReasonBadSignature},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, rsaKeyA(), claims, kid("nope")), ReasonUnknownKID},
		{"no kid, no key of the family verifies", sign(t, jwt.SigningMethodES384, ecP384(), claims, nil), ReasonUnknownKID},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(tc.token)
			wantReason(t, err, tc.want)
		})
	}
}

func TestJWKSSymmetricKeysIgnored(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	srv := newJWKSServer(t)
	oct, err := jwkset.NewJWKFromKey(secret, jwkset.JWKOptions{
		Marshal:  jwkset.JWKMarshalOptions{Private: true},
		Metadata: jwkset.JWKMetadataOptions{KID: "oct", ALG: jwkset.AlgHS256},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.serve(t, oct.Marshal(), jwk(t, &rsaKeyA().PublicKey, "rsa", jwkset.AlgRS256))
	// A secret is configured too, so HS256 is an accepted algorithm and
	// only the refusal of JWKS symmetric keys stops this token.
	v := newTestVerifier(t, VerifierConfig{Secret: testSecret, JWKSURL: srv.URL, JWKSUnknownKIDRefresh: time.Hour}, newClock())
	_, err = v.Verify(sign(t, jwt.SigningMethodHS256, secret, claimsAt(t0, "acme"), map[string]any{"kid": "oct"}))
	wantReason(t, err, ReasonBadAlg)
	_, err = v.Verify(sign(t, jwt.SigningMethodHS256, secret, claimsAt(t0, "acme"), nil))
	wantReason(t, err, ReasonBadSignature)
}

func TestJWKSWithPEMFallback(t *testing.T) {
	srv := newJWKSServer(t)
	srv.serve(t, jwk(t, &rsaKeyA().PublicKey, "A", jwkset.AlgRS256))
	v := newTestVerifier(t, VerifierConfig{
		JWKSURL:               srv.URL,
		JWKSUnknownKIDRefresh: time.Hour,
		PublicKeysPEM:         [][]byte{pubPEM(t, &rsaKeyB().PublicKey)},
	}, newClock())
	// PEM keys carry no kid, so a kid the JWKS does not know falls back to them.
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, rsaKeyB(), claimsAt(t0, "acme"), map[string]any{"kid": "pem-key"})); err != nil {
		t.Fatalf("PEM key with a kid: %v", err)
	}
	_, err := v.Verify(sign(t, jwt.SigningMethodRS256, mustRSA(2048), claimsAt(t0, "acme"), map[string]any{"kid": "pem-key"}))
	wantReason(t, err, ReasonBadSignature)
}

func TestJWKSUnreachableAtStart(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if v, err := NewVerifier(ctx, VerifierConfig{JWKSURL: srv.URL}); err == nil {
		v.Close()
		t.Fatal("NewVerifier succeeded with a JWKS that answers 404")
	}
	if v, err := NewVerifier(ctx, VerifierConfig{JWKSURL: "::not a url"}); err == nil {
		v.Close()
		t.Fatal("NewVerifier succeeded with an invalid JWKS URL")
	}
}

func TestJWKSPeriodicRefresh(t *testing.T) {
	srv := newJWKSServer(t)
	srv.serve(t, jwk(t, &rsaKeyA().PublicKey, "A", jwkset.AlgRS256))
	v := newTestVerifier(t, VerifierConfig{JWKSURL: srv.URL, JWKSRefresh: 50 * time.Millisecond}, newClock())
	deadline := time.Now().Add(time.Second)
	for srv.fetches.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d fetches in 1s with a 50ms refresh", srv.fetches.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	v.Close()
	time.Sleep(100 * time.Millisecond) // let a tick in flight finish
	after := srv.fetches.Load()
	time.Sleep(150 * time.Millisecond)
	if n := srv.fetches.Load(); n != after {
		t.Fatalf("refresh continued after Close: %d -> %d fetches", after, n)
	}
}
