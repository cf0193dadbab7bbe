package policy

import (
	"testing"
	"time"
)

func TestMintHS256(t *testing.T) {
	clock := newClock()
	tok, err := MintHS256(testSecret, "", "acme", 10*time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	v := newTestVerifier(t, VerifierConfig{Secret: testSecret}, clock)
	id, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Identity{Tenant: "acme", Subject: "tenantgate-dev", ExpiresAt: t0.Add(10 * time.Minute)}); id != want {
		t.Fatalf("identity = %+v, want %+v", id, want)
	}
	clock.Advance(10 * time.Minute)
	_, err = v.Verify(tok)
	wantReason(t, err, ReasonExpired)

	custom, err := MintHS256(testSecret, "org", "acme", time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := newTestVerifier(t, VerifierConfig{Secret: testSecret, TenantClaim: "org"}, newClock()).Verify(custom); err != nil || id.Tenant != "acme" {
		t.Fatalf("custom claim: %+v, %v", id, err)
	}

	refused := []struct {
		name   string
		secret []byte
		claim  string
		tenant string
		ttl    time.Duration
	}{
		{"invalid tenant", testSecret, "", "a:b", time.Minute},
		{"empty tenant", testSecret, "", "", time.Minute},
		{"short secret", []byte("short"), "", "acme", time.Minute},
		{"zero ttl", testSecret, "", "acme", 0},
		{"claim overwrites exp", testSecret, "exp", "acme", time.Minute},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if tok, err := MintHS256(tc.secret, tc.claim, tc.tenant, tc.ttl, t0); err == nil {
				t.Fatalf("minted %s", tok)
			}
		})
	}
}
