package policy

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	c := newLRU[string, int](2)
	c.put("a", 1)
	c.put("b", 2)
	if _, ok := c.get("a"); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.put("c", 3) // evicts b
	if _, ok := c.get("b"); ok {
		t.Fatal("b was not evicted")
	}
	for k, want := range map[string]int{"a": 1, "c": 3} {
		if got, ok := c.get(k); !ok || got != want {
			t.Fatalf("get(%s) = %d, %v", k, got, ok)
		}
	}
	c.put("a", 10) // update in place
	if got, _ := c.get("a"); got != 10 || c.len() != 2 {
		t.Fatalf("update: got %d, len %d", got, c.len())
	}
	c.remove("a")
	if _, ok := c.get("a"); ok || c.len() != 1 {
		t.Fatal("remove did not remove")
	}
}

func TestLRUConcurrent(t *testing.T) {
	c := newLRU[int, int](50)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				c.put(g*1000+i, i)
				c.get(i)
				if i%7 == 0 {
					c.remove(g*1000 + i - 1)
				}
			}
		})
	}
	wg.Wait()
	if n := c.len(); n > 50 {
		t.Fatalf("len %d exceeds bound 50", n)
	}
}

func TestVerifyCacheEntries(t *testing.T) {
	c := newVerifyCache(10)
	key := sha256.Sum256([]byte("token"))
	id := Identity{Tenant: "acme"}
	c.add(key, verified{identity: id, notAfter: t0.Add(time.Minute), keyGen: 3})

	if got, res := c.lookup(key, t0, 3); res != cacheHit || got != id {
		t.Fatalf("lookup = %v, %v; want hit", got, res)
	}
	if _, res := c.lookup(sha256.Sum256([]byte("other")), t0, 3); res != cacheMiss {
		t.Fatalf("unknown key: %v, want miss", res)
	}
	if _, res := c.lookup(key, t0, 4); res != cacheMiss {
		t.Fatalf("changed key generation: %v, want miss", res)
	}
	if _, res := c.lookup(key, t0, 3); res != cacheMiss {
		t.Fatalf("stale-generation entry was not dropped: %v", res)
	}
	c.add(key, verified{identity: id, notAfter: t0.Add(time.Minute), keyGen: 3})
	if _, res := c.lookup(key, t0.Add(time.Minute), 3); res != cacheExpired {
		t.Fatalf("at notAfter: %v, want expired", res)
	}
	if _, res := c.lookup(key, t0, 3); res != cacheMiss {
		t.Fatalf("expired entry was not dropped: %v", res)
	}
}

func TestVerifierCache(t *testing.T) {
	clock := newClock()
	v := newTestVerifier(t, VerifierConfig{Secret: testSecret, Leeway: 5 * time.Second}, clock)
	token := sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, "acme"), nil)

	first, err := v.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	if v.cache.entries.len() != 1 {
		t.Fatalf("cache holds %d entries after one verification, want 1", v.cache.entries.len())
	}
	// Prove the second answer comes from the cache: break the key the
	// token would need if it were verified again.
	v.static = &staticKeys{secret: []byte("a completely different 32b secret")}
	second, err := v.Verify(token)
	if err != nil {
		t.Fatalf("cached token refused: %v", err)
	}
	if first != second {
		t.Fatalf("cache returned %+v, first verification %+v", second, first)
	}

	// exp is t0+1h, leeway 5s: valid at t0+1h+4s, refused at t0+1h+5s even
	// though the entry is cached.
	clock.Advance(time.Hour + 4*time.Second)
	if _, err := v.Verify(token); err != nil {
		t.Fatalf("inside leeway: %v", err)
	}
	clock.Advance(time.Second)
	_, err = v.Verify(token)
	wantReason(t, err, ReasonExpired)
	if v.cache.entries.len() != 0 {
		t.Fatal("expired entry still cached")
	}
}

func TestVerifierCacheOnlySuccesses(t *testing.T) {
	clock := newClock()
	v := newTestVerifier(t, VerifierConfig{Secret: testSecret}, clock)
	c := claimsAt(t0, "acme")
	c["nbf"] = t0.Add(time.Minute).Unix()
	token := sign(t, jwt.SigningMethodHS256, testSecret, c, nil)
	_, err := v.Verify(token)
	wantReason(t, err, ReasonNotYetValid)
	if n := v.cache.entries.len(); n != 0 {
		t.Fatalf("a refused token was cached (%d entries)", n)
	}
	clock.Advance(time.Minute)
	if _, err := v.Verify(token); err != nil {
		t.Fatalf("after nbf: %v", err)
	}
}

func TestVerifierCacheBound(t *testing.T) {
	clock := newClock()
	v := newTestVerifier(t, VerifierConfig{Secret: testSecret, CacheSize: 3}, clock)
	for i := range 5 {
		token := sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, fmt.Sprintf("t%d", i)), nil)
		if _, err := v.Verify(token); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.cache.entries.len(); n != 3 {
		t.Fatalf("cache holds %d entries, bound is 3", n)
	}
}

func TestVerifierCacheDisabled(t *testing.T) {
	v := newTestVerifier(t, VerifierConfig{Secret: testSecret, CacheSize: -1}, newClock())
	token := sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, "acme"), nil)
	for range 2 {
		if _, err := v.Verify(token); err != nil {
			t.Fatal(err)
		}
	}
	if v.cache != nil {
		t.Fatal("cache exists although disabled")
	}
}

func TestVerifierConcurrent(t *testing.T) {
	clock := newClock()
	v := newTestVerifier(t, VerifierConfig{Secret: testSecret, CacheSize: 8}, clock)
	tokens := make([]string, 16)
	for i := range tokens {
		tokens[i] = sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, fmt.Sprintf("t%d", i)), nil)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				tok := tokens[(g+i)%len(tokens)]
				id, err := v.Verify(tok)
				if err != nil || id.Tenant != fmt.Sprintf("t%d", (g+i)%len(tokens)) {
					t.Errorf("Verify = %+v, %v", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
