package policy

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testSecret is a 64-byte HMAC secret, long enough for HS512.
var testSecret = []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")

// t0 is the fixed "now" of the tests.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// testClock is an injectable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *testClock { return &testClock{now: t0} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Keys are expensive to generate (RSA above all), so each is made once per
// test binary.
var (
	rsaKeyA = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	rsaKeyB = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	ecP256  = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P256()) })
	ecP384  = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P384()) })
	ecP521  = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P521()) })
	edKey   = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// pubPEM encodes a public key as a PKIX PEM block.
func pubPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func claimsAt(now time.Time, tenant string) jwt.MapClaims { return claimsFor(now, "tenant_id", tenant) }

// claimsFor are valid claims for tenant, expiring an hour after now.
func claimsFor(now time.Time, claim, tenant string) jwt.MapClaims {
	return jwt.MapClaims{
		claim: tenant,
		"sub": "user-1",
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
}

// sign signs claims with method and key, adding header fields.
func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// newTestVerifier builds a verifier on the test clock.
func newTestVerifier(t testing.TB, cfg VerifierConfig, clock *testClock) *Verifier {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	v, err := NewVerifier(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

// wantReason fails t unless err is a *RefusalError with reason want.
func wantReason(t testing.TB, err error, want Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want refusal %q", want)
	}
	var re *RefusalError
	if !errors.As(err, &re) {
		t.Fatalf("got %T %v, want *RefusalError %q", err, err, want)
	}
	if re.Reason != want {
		t.Fatalf("got reason %q (%v), want %q", re.Reason, err, want)
	}
}

// quietLogger discards the logs of tests that provoke failures on purpose.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// failingRegistry stands in for a registry whose backing store is down
// (the PostgreSQL registry's own outage is tested against a real port).
type failingRegistry struct{}

func (failingRegistry) ByID(context.Context, string) (Tenant, error) {
	return Tenant{}, Refuse(ReasonRegistryError, "down")
}

func (failingRegistry) BySlug(context.Context, string) (Tenant, error) {
	return Tenant{}, Refuse(ReasonRegistryError, "down")
}
