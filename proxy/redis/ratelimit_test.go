package redis

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/proxy"
)

// incrPipeline sends n INCR counter in one pipeline and returns how many
// were admitted; every other reply must be the rate limit refusal.
func incrPipeline(t *testing.T, c *goredis.Client, n int) int {
	t.Helper()
	ctx := context.Background()
	pipe := c.Pipeline()
	cmds := make([]*goredis.IntCmd, n)
	for i := range cmds {
		cmds[i] = pipe.Incr(ctx, "counter")
	}
	_, _ = pipe.Exec(ctx)
	admitted := 0
	for _, cmd := range cmds {
		switch err := cmd.Err(); {
		case err == nil:
			admitted++
		case err.Error() != "ERR rate limit exceeded":
			t.Fatalf("INCR: %v, want success or the rate limit refusal", err)
		}
	}
	return admitted
}

func refusals(t *testing.T, p *testProxy, reason string) float64 {
	t.Helper()
	return p.metric("tenantgate_refusals_total", "reason", reason)
}

// TestRateLimitPerTenant: a tenant over its limit is refused, on every one
// of its sessions, with its connections kept; another tenant is not; the
// burst is honoured and refilled at the configured rate; refusals are all
// counted but audited at most once a second per session.
func TestRateLimitPerTenant(t *testing.T) {
	ids := tenants(2)
	p := startProxyOpts(t, proxy.ListenerConfig{}, Options{RateLimit: &RateLimit{RequestsPerSecond: 1, Burst: 5}}, ids...)
	ctx := context.Background()
	// RESP2 clients: go-redis sends nothing after AUTH on them (over RESP3
	// it tries CLIENT MAINT_NOTIFICATIONS, a command that counts too).
	a, b := p.client2(ids[0]), p.client2(ids[1])

	start := time.Now()
	admitted := incrPipeline(t, a, 20)
	// The burst, plus a token refilled if the machine was slow.
	if admitted < 5 || admitted > 5+int(time.Since(start).Seconds()) {
		t.Fatalf("admitted %d of 20 with a burst of 5 at 1/s", admitted)
	}
	if got := must[string](t)(p.upstream.Get(ctx, "t:"+ids[0]+":counter").Result()); got != strconv.Itoa(admitted) {
		t.Fatalf("the upstream counter is %s, want %d: refused commands reached Redis", got, admitted)
	}
	refused := 20 - admitted

	// Another session of the same tenant shares the budget.
	a2 := p.client2(ids[0])
	if time.Since(start) < 900*time.Millisecond {
		if err := a2.Ping(ctx).Err(); err == nil || err.Error() != "ERR rate limit exceeded" {
			t.Fatalf("PING on a second session of the limited tenant: %v, want the rate limit refusal", err)
		}
		refused++
	}

	// Another tenant has its own budget.
	if got := incrPipeline(t, b, 5); got != 5 {
		t.Fatalf("the other tenant: admitted %d of 5", got)
	}

	// The refill: one token a second; the connection kept working.
	time.Sleep(1100 * time.Millisecond)
	if got := incrPipeline(t, a, 3); got < 1 || got > 2 {
		t.Fatalf("after 1.1 s at 1/s: admitted %d of 3, want 1 (2 on a slow machine)", got)
	} else {
		refused += 3 - got
	}

	if got := refusals(t, p, reasonRateLimited); got != float64(refused) {
		t.Errorf("refusals_total{reason=rate_limited} = %v, want %d", got, refused)
	}
	audited := strings.Count(p.auditLog(), `"reason":"rate_limited"`)
	if audited < 1 || audited >= refused {
		t.Errorf("%d rate_limited audit events for %d refusals: want at least one, at most one a second per session", audited, refused)
	}
	if !strings.Contains(p.auditLog(), "more commands of this session since the last audited one") {
		t.Errorf("the audited refusal after the quiet ones does not count them:\n%s", p.auditLog())
	}
}

// TestRateLimitInMulti: a command refused by the rate limit inside MULTI
// makes EXEC abort, like any command the proxy refuses while queueing; EXEC
// itself is not limited (its commands were counted as they were queued),
// so the transaction always ends.
func TestRateLimitInMulti(t *testing.T) {
	ids := tenants(1)
	p := startProxyOpts(t, proxy.ListenerConfig{}, Options{RateLimit: &RateLimit{RequestsPerSecond: 1, Burst: 3}}, ids...)
	ctx := context.Background()
	c := p.client2(ids[0])
	_, err := c.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
		for range 4 {
			pipe.Incr(ctx, "counter")
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "EXECABORT") {
		t.Fatalf("MULTI with a rate-limited command: %v, want EXECABORT", err)
	}
	if n := p.upstream.Exists(ctx, "t:"+ids[0]+":counter").Val(); n != 0 {
		t.Fatal("the aborted transaction ran")
	}
}

// TestRateLimitSharedAcrossSidecars: two engines (two sidecars) sharing a
// window in Redis admit the tenant's rate together, not each.
func TestRateLimitSharedAcrossSidecars(t *testing.T) {
	ids := tenants(2)
	limit := &RateLimit{RequestsPerSecond: 5, Burst: 5, Shared: testutil.RedisURL(t)}
	p1 := startProxyOpts(t, proxy.ListenerConfig{}, Options{RateLimit: limit}, ids...)
	p2 := startProxyOpts(t, proxy.ListenerConfig{}, Options{RateLimit: limit}, ids...)
	ctx := context.Background()
	windowKeys := func(tenant string) []string {
		return must[[]string](t)(p1.upstream.Keys(ctx, "t:~ratelimit:"+tenant+":*").Result())
	}
	t.Cleanup(func() {
		for _, id := range ids {
			for _, k := range windowKeys(id) {
				p1.upstream.Del(ctx, k)
			}
		}
	})

	if got := incrPipeline(t, p1.client2(ids[0]), 5); got != 5 {
		t.Fatalf("first sidecar: admitted %d of 5", got)
	}
	first := time.Now()
	// Wait for the first sidecar's sync to land in Redis.
	deadline := time.Now().Add(3 * time.Second)
	for {
		sum := 0
		for _, k := range windowKeys(ids[0]) {
			n, _ := p1.upstream.Get(ctx, k).Int()
			sum += n
		}
		if sum == 5 {
			break
		}
		if sum > 5 || time.Now().After(deadline) {
			t.Fatalf("the shared window holds %d after 5 admitted commands", sum)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The second sidecar's own bucket is full, but the tenant's shared
	// window is spent: it admits only what the window slid by meanwhile.
	got := incrPipeline(t, p2.client2(ids[0]), 5)
	slid := int(5*time.Since(first).Seconds()) + 1
	if got >= 5 || got > slid {
		t.Fatalf("second sidecar: admitted %d of 5 after %v; want at most %d: the window is not shared", got, time.Since(first), slid)
	}
	// Another tenant's window is its own.
	if got := incrPipeline(t, p2.client2(ids[1]), 5); got != 5 {
		t.Fatalf("the other tenant on the second sidecar: admitted %d of 5", got)
	}
}
