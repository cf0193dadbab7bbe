package redis

import "testing"

func TestTenantScope(t *testing.T) {
	tests := []struct {
		template, tenant     string
		wantPrefix, wantGlob string
	}{
		{DefaultKeyPrefix, "acme", "t:acme:", "t:acme:"},
		{"{t:{tenant}}:", "acme", "{t:acme}:", "{t:acme}:"},
		{"*[{tenant}]?\\", "a-1", "*[a-1]?\\", "\\*\\[a-1\\]\\?\\\\"},
	}
	for _, tt := range tests {
		sc := newTenantScope(tt.template, tt.tenant)
		if string(sc.prefix) != tt.wantPrefix || string(sc.globPrefix) != tt.wantGlob {
			t.Errorf("%q: prefix %q glob %q, want %q %q", tt.template, sc.prefix, sc.globPrefix, tt.wantPrefix, tt.wantGlob)
		}
		if got := string(sc.key([]byte("k"))); got != tt.wantPrefix+"k" {
			t.Errorf("key = %q", got)
		}
		if got, ok := sc.strip(sc.key([]byte("k"))); !ok || string(got) != "k" {
			t.Errorf("strip = %q, %v", got, ok)
		}
		if got, ok := sc.stripPattern(sc.pattern([]byte("a*"))); !ok || string(got) != "a*" {
			t.Errorf("stripPattern = %q, %v", got, ok)
		}
	}
	sc := newTenantScope(DefaultKeyPrefix, "acme")
	if _, ok := sc.strip([]byte("t:other:k")); ok {
		t.Error("strip accepted another tenant's key")
	}
}
