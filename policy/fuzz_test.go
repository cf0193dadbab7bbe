package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, must
// only ever return *RefusalError, and must never accept a token whose
// signature an independent check with the same secret rejects.
func FuzzVerify(f *testing.F) {
	valid := func(edit func(jwt.MapClaims)) string {
		c := claimsAt(t0, "acme")
		edit(c)
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(testSecret)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	good := valid(func(jwt.MapClaims) {})
	for _, seed := range []string{
		good,
		valid(func(c jwt.MapClaims) { c["tenant_id"] = []any{"a", 1} }),
		valid(func(c jwt.MapClaims) { c["exp"] = 1e300 }),
		valid(func(c jwt.MapClaims) { c["nbf"] = -1e300 }),
		good[:strings.LastIndex(good, ".")] + ".AAAA",
		unsigned(`{"alg":"none"}`, `{"tenant_id":"acme","exp":9999999999}`, ""),
		unsigned(`{"alg":"HS256","kid":{}}`, `{}`, "x"),
		unsigned(`{"alg":"RS256","crit":["b64"]}`, `null`, ""),
		"", ".", "..", "a.b.c", "eyJ.eyJ.", strings.Repeat("A", 100),
	} {
		f.Add(seed)
	}
	v, err := NewVerifier(f.Context(), VerifierConfig{
		Secret: testSecret,
		Leeway: time.Second,
		Now:    func() time.Time { return t0 },
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)
	independent := jwt.NewParser(jwt.WithValidMethods([]string{"HS256", "HS384", "HS512"}), jwt.WithoutClaimsValidation())

	f.Fuzz(func(t *testing.T, token string) {
		id, err := v.Verify(token)
		if err != nil {
			var re *RefusalError
			if !errors.As(err, &re) || re.Reason == "" {
				t.Fatalf("Verify returned %T %v, not a refusal", err, err)
			}
			return
		}
		if _, perr := independent.Parse(token, func(*jwt.Token) (any, error) { return testSecret, nil }); perr != nil {
			t.Fatalf("Verify accepted a token an independent check rejects (%v): %q", perr, token)
		}
		if !ValidTenantID(id.Tenant) {
			t.Fatalf("accepted invalid tenant %q", id.Tenant)
		}
	})
}
