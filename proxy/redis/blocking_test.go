package redis

import (
	"context"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestBlockingPopWokenOnlyBySameTenant blocks one tenant on a list, pushes
// to the same list name as another tenant (which must not wake it), then
// as the same tenant from another connection (which must).
func TestBlockingPopWokenOnlyBySameTenant(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	ctx := context.Background()
	waiter, sameTenant, other := p.client(ids[0]), p.client(ids[0]), p.client(ids[1])

	type popped struct {
		v   []string
		err error
		at  time.Time
	}
	done := make(chan popped, 1)
	go func() {
		v, err := waiter.BLPop(ctx, 5*time.Second, "queue").Result()
		done <- popped{v, err, time.Now()}
	}()
	time.Sleep(200 * time.Millisecond)
	must[int64](t)(other.RPush(ctx, "queue", "from-other").Result())
	select {
	case r := <-done:
		t.Fatalf("BLPOP woken by another tenant's push: %v %v", r.v, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	pushed := time.Now()
	must[int64](t)(sameTenant.RPush(ctx, "queue", "mine").Result())
	r := <-done
	if r.err != nil || !slices.Equal(r.v, []string{"queue", "mine"}) {
		t.Fatalf("BLPOP = %q, %v; want [queue mine]", r.v, r.err)
	}
	if r.at.Sub(pushed) > 2*time.Second {
		t.Errorf("BLPOP returned %s after the push", r.at.Sub(pushed))
	}
	if got := must[[]string](t)(other.LRange(ctx, "queue", 0, -1).Result()); !slices.Equal(got, []string{"from-other"}) {
		t.Errorf("other tenant's queue = %q", got)
	}
}

func TestBlockingReplyKeyNamesAreUnscoped(t *testing.T) {
	ids := tenants(1)
	p := startProxy(t, ids...)
	ctx := context.Background()
	c := p.client(ids[0])
	must[int64](t)(c.ZAdd(ctx, "z", goredis.Z{Score: 1, Member: "m"}).Result())
	if got := must[*goredis.ZWithKey](t)(c.BZPopMin(ctx, time.Second, "empty", "z").Result()); got.Key != "z" || got.Member != "m" {
		t.Errorf("BZPOPMIN = %+v", got)
	}
	must[int64](t)(c.RPush(ctx, "l2", "a", "b").Result())
	key, vals := must2[string, []string](t)(c.BLMPop(ctx, time.Second, "left", 5, "l1", "l2").Result())
	if key != "l2" || !slices.Equal(vals, []string{"a", "b"}) {
		t.Errorf("BLMPOP = %q %q", key, vals)
	}
	must[int64](t)(c.ZAdd(ctx, "z2", goredis.Z{Score: 2, Member: "n"}).Result())
	zkey, zs := must2[string, []goredis.Z](t)(c.ZMPop(ctx, "min", 1, "z2").Result())
	if zkey != "z2" || len(zs) != 1 || zs[0].Member != "n" {
		t.Errorf("ZMPOP = %q %v", zkey, zs)
	}
	must[string](t)(c.XAdd(ctx, &goredis.XAddArgs{Stream: "s", ID: "1-1", Values: []any{"f", "v"}}).Result())
	must[string](t)(c.XGroupCreate(ctx, "s", "g", "0").Result())
	streams := must[[]goredis.XStream](t)(c.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"s", ">"}, Block: time.Second}).Result())
	if len(streams) != 1 || streams[0].Stream != "s" || len(streams[0].Messages) != 1 {
		t.Errorf("XREADGROUP = %+v", streams)
	}
}

func must2[A, B any](t *testing.T) func(a A, b B, err error) (A, B) {
	return func(a A, b B, err error) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}
