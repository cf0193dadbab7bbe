package policy

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func newTestAuthenticator(t *testing.T) (*Authenticator, func(tenant string) string) {
	t.Helper()
	clock := newClock()
	v := newTestVerifier(t, VerifierConfig{Secret: testSecret}, clock)
	reg, err := NewStaticRegistry([]Tenant{
		{ID: "acme", Slug: "acme-corp", Active: true},
		{ID: "globex", Slug: "globex", Active: true},
		{ID: "initech", Active: false},
	})
	if err != nil {
		t.Fatal(err)
	}
	token := func(tenant string) string {
		return sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, tenant), nil)
	}
	return NewAuthenticator(v, reg), token
}

func TestAuthenticate(t *testing.T) {
	a, token := newTestAuthenticator(t)
	cases := []struct {
		name  string
		token string
		want  Reason // "" means accepted
	}{
		{"active tenant", token("acme"), ""},
		{"unknown tenant", token("nobody"), ReasonUnknownTenant},
		{"suspended tenant", token("initech"), ReasonSuspendedTenant},
		{"token refusals pass through", "", ReasonMissingToken},
		{"forged token", sign(t, jwt.SigningMethodHS256, []byte("another secret that is 32 bytes."), claimsAt(t0, "acme"), nil), ReasonBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := a.Authenticate(t.Context(), tc.token)
			if tc.want == "" {
				if err != nil || id.Tenant != "acme" {
					t.Fatalf("got %+v, %v", id, err)
				}
				return
			}
			wantReason(t, err, tc.want)
			if id != (Identity{}) {
				t.Fatalf("refusal returned an identity: %+v", id)
			}
		})
	}
}

func TestAuthenticateRegistryFailure(t *testing.T) {
	v := newTestVerifier(t, VerifierConfig{Secret: testSecret}, newClock())
	a := NewAuthenticator(v, failingRegistry{})
	_, err := a.Authenticate(t.Context(), sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, "acme"), nil))
	wantReason(t, err, ReasonRegistryError)
}

func TestAuthenticateSNI(t *testing.T) {
	a, token := newTestAuthenticator(t)
	const suffix = "db.example.com"
	cases := []struct {
		name, tenant, serverName, suffix string
		want                             Reason
	}{
		{"slug of the token's tenant", "acme", "acme-corp.db.example.com", suffix, ""},
		{"case-insensitive, trailing dot", "acme", "ACME-Corp.DB.example.com.", suffix, ""},
		{"suffix given with a leading dot", "acme", "acme-corp.db.example.com", "." + suffix, ""},
		{"slug of another tenant", "acme", "globex.db.example.com", suffix, ReasonTenantMismatch},
		{"id instead of slug", "acme", "acme.db.example.com", suffix, ReasonTenantMismatch},
		{"unknown slug", "acme", "nobody.db.example.com", suffix, ReasonTenantMismatch},
		{"two labels before the suffix", "acme", "x.acme-corp.db.example.com", suffix, ReasonTenantMismatch},
		{"slug of a suspended tenant for another token", "acme", "initech.db.example.com", suffix, ReasonTenantMismatch},
		{"name outside the suffix is not checked", "acme", "globex.other.example.com", suffix, ""},
		{"the suffix itself is not checked", "acme", suffix, suffix, ""},
		{"look-alike suffix is not checked", "acme", "globex.evildb.example.com", suffix, ""},
		{"empty server name is not checked", "acme", "", suffix, ""},
		{"empty suffix disables the check", "acme", "globex.db.example.com", "", ""},
		{"token refusal comes first", "initech", "initech.db.example.com", suffix, ReasonSuspendedTenant},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := a.AuthenticateSNI(t.Context(), token(tc.tenant), tc.serverName, tc.suffix)
			if tc.want == "" {
				if err != nil || id.Tenant != tc.tenant {
					t.Fatalf("got %+v, %v", id, err)
				}
				return
			}
			wantReason(t, err, tc.want)
		})
	}
}

func TestAuthenticateWithoutRegistry(t *testing.T) {
	v := newTestVerifier(t, VerifierConfig{Secret: testSecret}, newClock())
	a := NewAuthenticator(v, nil)
	tok := sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, "acme"), nil)
	if _, err := a.Authenticate(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AuthenticateSNI(t.Context(), tok, "acme.db.example.com", "db.example.com"); err != nil {
		t.Fatalf("slug equal to the id: %v", err)
	}
	_, err := a.AuthenticateSNI(t.Context(), tok, "globex.db.example.com", "db.example.com")
	wantReason(t, err, ReasonTenantMismatch)
}
