package policy

import (
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/testutil"
)

func allowed(t *TenantLimit, now time.Time, n int) int {
	got := 0
	for range n {
		if t.Allow(now) {
			got++
		}
	}
	return got
}

// TestRateLimiterLocal: one bucket per tenant, shared by its sessions,
// refilled at the rate; a tenant is forgotten only when that changes
// nothing.
func TestRateLimiterLocal(t *testing.T) {
	l, err := NewRateLimiter(t.Context(), RateLimitOptions{RequestsPerSecond: 10, Burst: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	now := time.Now()
	a1, a2, b := l.For(t.Context(), "a"), l.For(t.Context(), "a"), l.For(t.Context(), "b")
	if got := allowed(a1, now, 2) + allowed(a2, now, 2); got != 3 {
		t.Fatalf("two sessions of one tenant: admitted %d, want the burst of 3 between them", got)
	}
	if got := allowed(b, now, 5); got != 3 {
		t.Fatalf("another tenant: admitted %d, want its own burst of 3", got)
	}
	if got := allowed(a1, now.Add(200*time.Millisecond), 5); got != 2 {
		t.Fatalf("200 ms later at 10/s: admitted %d, want 2", got)
	}

	// Without sessions, a drained bucket is kept (forgetting it would hand
	// out a fresh burst on reconnect); a full one is forgotten.
	a1.Release()
	a2.Release()
	b.Release()
	l.mu.Lock()
	l.sweepLocked(now.Add(200 * time.Millisecond))
	_, keptA := l.tenants["a"]
	l.sweepLocked(now.Add(time.Second))
	_, stillA := l.tenants["a"]
	l.mu.Unlock()
	if !keptA || stillA {
		t.Fatalf("sweep: drained bucket kept=%v, full bucket kept=%v; want true, false", keptA, stillA)
	}

	// Burst 0 means a second's worth.
	l2, err := NewRateLimiter(t.Context(), RateLimitOptions{RequestsPerSecond: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got := allowed(l2.For(t.Context(), "a"), now, 10); got != 4 {
		t.Fatalf("burst 0 at 4/s: admitted %d, want 4", got)
	}
}

// TestRateLimiterSharedOutage: when the shared window's Redis fails, the
// limiter falls back to the local bucket instead of refusing everything.
func TestRateLimiterSharedOutage(t *testing.T) {
	l, err := NewRateLimiter(t.Context(), RateLimitOptions{
		RequestsPerSecond: 100, Burst: 100, SharedURL: testutil.RedisURL(t),
		KeyPrefix: "test:~ratelimit:" + testutil.UniqueName("p") + ":",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a := l.For(t.Context(), "a")
	// Other sidecars spent the window.
	a.mu.Lock()
	a.knownCurr = 1000
	a.mu.Unlock()
	if a.Allow(time.Now()) {
		t.Fatal("admitted with the shared window spent")
	}
	_ = l.shared.client.Close() // the outage
	deadline := time.Now().Add(5 * time.Second)
	for !l.shared.degraded.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the limiter did not notice the shared Redis failing")
		}
		a.Allow(time.Now()) // keep the tenant active, so it is synced
		time.Sleep(20 * time.Millisecond)
	}
	if !a.Allow(time.Now()) {
		t.Fatal("the shared Redis is down: want the local bucket to decide, got a refusal")
	}
}

// TestRateLimiterWindowRoll: the shared window's counts move to the
// previous window at a boundary and are dropped after two, and a clock
// read from before the current window (another session's) changes nothing.
func TestRateLimiterWindowRoll(t *testing.T) {
	lt := &TenantLimit{}
	w := time.Second
	base := time.Unix(1000, 0)
	lt.roll(base, w)
	lt.knownCurr, lt.pend = 7, 3
	if f := lt.roll(base.Add(-time.Millisecond), w); f != 0 || lt.win != 1000 || lt.knownCurr != 7 || lt.pend != 3 {
		t.Fatalf("an older clock read changed the window: frac %v, %+v", f, lt)
	}
	if f := lt.roll(base.Add(1250*time.Millisecond), w); f != 0.25 || lt.knownPrev != 7 || lt.prevPend != 3 || lt.knownCurr != 0 || lt.pend != 0 {
		t.Fatalf("next window: frac %v, %+v", f, lt)
	}
	lt.roll(base.Add(3500*time.Millisecond), w)
	if lt.knownPrev != 0 || lt.prevPend != 0 {
		t.Fatalf("two windows later the old counts remain: %+v", lt)
	}
}
