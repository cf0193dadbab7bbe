package redis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestTenantsShareKeyNamesButNotData writes the same key names as two
// tenants across every data type and checks each sees only its own values,
// and that on the upstream the keys carry each tenant's prefix.
func TestTenantsShareKeyNamesButNotData(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	ctx := context.Background()
	for i, id := range ids {
		c := p.client(id)
		v := fmt.Sprintf("v%d", i)
		pipe := c.TxPipeline()
		pipe.Set(ctx, "str", v, time.Hour)
		pipe.HSet(ctx, "hash", "f", v)
		pipe.RPush(ctx, "list", v, v+"b")
		pipe.SAdd(ctx, "set", v)
		pipe.ZAdd(ctx, "zset", goredis.Z{Score: float64(i), Member: v})
		pipe.XAdd(ctx, &goredis.XAddArgs{Stream: "stream", ID: "1-1", Values: []any{"f", v}})
		pipe.SetBit(ctx, "bits", int64(i), 1)
		pipe.PFAdd(ctx, "hll", v)
		pipe.GeoAdd(ctx, "geo", &goredis.GeoLocation{Name: v, Longitude: 13.4, Latitude: 52.5})
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("tenant %d writes: %v", i, err)
		}
	}
	for i, id := range ids {
		c := p.client(id)
		v := fmt.Sprintf("v%d", i)
		if got := must[string](t)(c.Get(ctx, "str").Result()); got != v {
			t.Errorf("tenant %d GET = %q, want %q", i, got, v)
		}
		if ttl := must[time.Duration](t)(c.TTL(ctx, "str").Result()); ttl <= 0 || ttl > time.Hour {
			t.Errorf("tenant %d TTL = %v", i, ttl)
		}
		if got := must[string](t)(c.HGet(ctx, "hash", "f").Result()); got != v {
			t.Errorf("tenant %d HGET = %q", i, got)
		}
		if got := must[[]string](t)(c.LRange(ctx, "list", 0, -1).Result()); !slices.Equal(got, []string{v, v + "b"}) {
			t.Errorf("tenant %d LRANGE = %q", i, got)
		}
		if got := must[[]string](t)(c.SMembers(ctx, "set").Result()); !slices.Equal(got, []string{v}) {
			t.Errorf("tenant %d SMEMBERS = %q", i, got)
		}
		if got := must[[]goredis.Z](t)(c.ZRangeWithScores(ctx, "zset", 0, -1).Result()); len(got) != 1 || got[0].Member != v || got[0].Score != float64(i) {
			t.Errorf("tenant %d ZRANGE = %v", i, got)
		}
		if got := must[[]goredis.XMessage](t)(c.XRange(ctx, "stream", "-", "+").Result()); len(got) != 1 || got[0].Values["f"] != v {
			t.Errorf("tenant %d XRANGE = %v", i, got)
		}
		if got := must[int64](t)(c.BitCount(ctx, "bits", nil).Result()); got != 1 {
			t.Errorf("tenant %d BITCOUNT = %d", i, got)
		}
		if got := must[int64](t)(c.GetBit(ctx, "bits", int64(i)).Result()); got != 1 {
			t.Errorf("tenant %d GETBIT = %d", i, got)
		}
		if got := must[int64](t)(c.PFCount(ctx, "hll").Result()); got != 1 {
			t.Errorf("tenant %d PFCOUNT = %d", i, got)
		}
		if got := must[[]string](t)(c.GeoSearch(ctx, "geo", &goredis.GeoSearchQuery{Longitude: 13.4, Latitude: 52.5, Radius: 1, RadiusUnit: "km"}).Result()); !slices.Equal(got, []string{v}) {
			t.Errorf("tenant %d GEOSEARCH = %q", i, got)
		}
		want := []string{"bits", "geo", "hash", "hll", "list", "set", "str", "stream", "zset"}
		keys := must[[]string](t)(c.Keys(ctx, "*").Result())
		slices.Sort(keys)
		if !slices.Equal(keys, want) {
			t.Errorf("tenant %d KEYS * = %q, want %q", i, keys, want)
		}
		if n := must[int64](t)(c.DBSize(ctx).Result()); n != int64(len(want)) {
			t.Errorf("tenant %d DBSIZE = %d, want %d", i, n, len(want))
		}
		up := p.upstreamKeys(id)
		slices.Sort(up)
		for j := range want {
			want[j] = "t:" + id + ":" + want[j]
		}
		if !slices.Equal(up, want) {
			t.Errorf("tenant %d upstream keys = %q, want %q", i, up, want)
		}
	}
}

func TestMultiKeyCommands(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	ctx := context.Background()
	a, b := p.client(ids[0]), p.client(ids[1])
	must[string](t)(a.MSet(ctx, "k1", "a1", "k2", "a2").Result())
	must[string](t)(b.MSet(ctx, "k1", "b1", "k2", "b2", "k3", "b3").Result())
	if got := must[[]any](t)(a.MGet(ctx, "k1", "k2", "k3").Result()); got[0] != "a1" || got[1] != "a2" || got[2] != nil {
		t.Errorf("MGET = %v", got)
	}
	must[string](t)(a.Rename(ctx, "k1", "renamed").Result())
	if n := must[int64](t)(b.Exists(ctx, "renamed").Result()); n != 0 {
		t.Error("RENAME by one tenant created the key for the other")
	}
	if n := must[int64](t)(a.Del(ctx, "renamed", "k2", "k3").Result()); n != 2 {
		t.Errorf("DEL = %d, want 2 (k3 is the other tenant's)", n)
	}
	if got := must[string](t)(b.Get(ctx, "k3").Result()); got != "b3" {
		t.Errorf("the other tenant's k3 = %q", got)
	}
	for _, c := range []*goredis.Client{a, b} {
		must[int64](t)(c.ZAdd(ctx, "z1", goredis.Z{Score: 1, Member: "x"}).Result())
		must[int64](t)(c.ZAdd(ctx, "z2", goredis.Z{Score: 2, Member: "y"}).Result())
	}
	must[int64](t)(b.ZAdd(ctx, "z2", goredis.Z{Score: 3, Member: "only-b"}).Result())
	if n := must[int64](t)(a.ZUnionStore(ctx, "zu", &goredis.ZStore{Keys: []string{"z1", "z2"}, Weights: []float64{1, 10}}).Result()); n != 2 {
		t.Errorf("ZUNIONSTORE = %d, want 2", n)
	}
	if got := must[[]goredis.Z](t)(a.ZRangeWithScores(ctx, "zu", 0, -1).Result()); len(got) != 2 || got[1].Score != 20 {
		t.Errorf("ZUNIONSTORE result = %v", got)
	}
	must[int64](t)(a.SAdd(ctx, "s1", "x", "y").Result())
	must[int64](t)(a.SAdd(ctx, "s2", "y").Result())
	must[int64](t)(b.SAdd(ctx, "s2", "x").Result())
	if got := must[[]string](t)(a.SInter(ctx, "s1", "s2").Result()); !slices.Equal(got, []string{"y"}) {
		t.Errorf("SINTER = %q", got)
	}
	must[int64](t)(a.RPush(ctx, "src", "1", "2").Result())
	if got := must[string](t)(a.LMove(ctx, "src", "dst", "LEFT", "RIGHT").Result()); got != "1" {
		t.Errorf("LMOVE = %q", got)
	}
	if n := must[int64](t)(b.LLen(ctx, "dst").Result()); n != 0 {
		t.Error("LMOVE reached the other tenant")
	}
	for _, k := range p.upstreamKeys(ids[0]) {
		if !strings.HasPrefix(k, "t:"+ids[0]+":") {
			t.Errorf("upstream key %q", k)
		}
	}
}

func TestTransactionsWithWatch(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	ctx := context.Background()
	a, b := p.client(ids[0]), p.client(ids[1])
	must[string](t)(a.Set(ctx, "counter", "1", 0).Result())
	must[string](t)(b.Set(ctx, "counter", "100", 0).Result())
	// The other tenant touching its own "counter" does not break the watch.
	err := a.Watch(ctx, func(tx *goredis.Tx) error {
		n := must[int](t)(tx.Get(ctx, "counter").Int())
		must[string](t)(b.Set(ctx, "counter", "101", 0).Result())
		_, err := tx.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
			pipe.Set(ctx, "counter", n+1, 0)
			return nil
		})
		return err
	}, "counter")
	if err != nil {
		t.Fatalf("WATCH transaction: %v", err)
	}
	// The same tenant touching it does.
	err = a.Watch(ctx, func(tx *goredis.Tx) error {
		must[string](t)(a.Set(ctx, "counter", "50", 0).Result())
		_, err := tx.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
			pipe.Set(ctx, "counter", "never", 0)
			return nil
		})
		return err
	}, "counter")
	if err != goredis.TxFailedErr {
		t.Fatalf("WATCH after a same-tenant write: err = %v, want TxFailedErr", err)
	}
	if got := must[string](t)(a.Get(ctx, "counter").Result()); got != "50" {
		t.Errorf("counter = %q", got)
	}
	if got := must[string](t)(b.Get(ctx, "counter").Result()); got != "101" {
		t.Errorf("other tenant's counter = %q", got)
	}
}

// A command refused inside MULTI aborts the transaction at EXEC, as Redis
// does for commands it rejects while queueing.
func TestRefusalInsideMultiAbortsExec(t *testing.T) {
	ids := tenants(1)
	p := startProxy(t, ids...)
	c := dialRaw(t, p)
	c.do("AUTH", p.token(ids[0]))
	for _, step := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"MULTI"}, "+OK"},
		{[]string{"SET", "k", "v"}, "+QUEUED"},
		{[]string{"EVAL", "return 1", "0"}, "-ERR scripts"},
		{[]string{"EXEC"}, "-EXECABORT"},
		{[]string{"EXISTS", "k"}, ":0"},
		{[]string{"EXEC"}, "-ERR EXEC without MULTI"},
	} {
		if got := c.do(step.cmd...); !strings.HasPrefix(got, step.want) {
			t.Errorf("%v = %q, want %s...", step.cmd, got, step.want)
		}
	}
}

func TestPipelineOfAThousand(t *testing.T) {
	ids := tenants(1)
	p := startProxy(t, ids...)
	ctx := context.Background()
	c := p.client(ids[0])
	pipe := c.Pipeline()
	for i := range 1000 {
		pipe.Set(ctx, fmt.Sprintf("k%d", i), i, 0)
	}
	gets := make([]*goredis.StringCmd, 1000)
	for i := range 1000 {
		gets[i] = pipe.Get(ctx, fmt.Sprintf("k%d", i))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i, g := range gets {
		if g.Val() != fmt.Sprint(i) {
			t.Fatalf("reply %d = %q: replies out of order", i, g.Val())
		}
	}
	if n := len(p.upstreamKeys(ids[0])); n != 1000 {
		t.Errorf("upstream has %d keys, want 1000", n)
	}
}

// TestScanAmongAnotherTenantsKeys walks 10k keys of one tenant while the
// other tenant has 10k of its own, with and without MATCH.
func TestScanAmongAnotherTenantsKeys(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	ctx := context.Background()
	const n = 10000
	for i, id := range ids {
		pipe := p.client(id).Pipeline()
		for j := range n {
			pipe.Set(ctx, fmt.Sprintf("key:%d", j), i, 0)
		}
		pipe.Set(ctx, fmt.Sprintf("only%d", i), i, 0)
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a := p.client(ids[0])
	seen := map[string]bool{}
	iter := a.Scan(ctx, 0, "", 500).Iterator()
	for iter.Next(ctx) {
		seen[iter.Val()] = true
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n+1 || !seen["only0"] || seen["only1"] || !seen["key:9999"] {
		t.Errorf("SCAN saw %d keys (only0 %v, only1 %v)", len(seen), seen["only0"], seen["only1"])
	}
	var matched int
	iter = a.Scan(ctx, 0, "key:99*", 1000).Iterator()
	for iter.Next(ctx) {
		if !strings.HasPrefix(iter.Val(), "key:99") {
			t.Errorf("SCAN MATCH key:99* returned %q", iter.Val())
		}
		matched++
	}
	if matched != 111 {
		t.Errorf("SCAN MATCH key:99* found %d keys, want 111", matched)
	}
}

// TestAwkwardKeyNames uses glob metacharacters, colons and the prefix text
// itself in key names and patterns.
func TestAwkwardKeyNames(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	ctx := context.Background()
	a, b := p.client(ids[0]), p.client(ids[1])
	names := []string{"*", "?", "[", "\\", ":", "a*b", "[ab]", "x\\*y", "", "t:" + ids[1] + ":k", "t:" + ids[0] + ":k"}
	for _, k := range names {
		must[string](t)(a.Set(ctx, k, "a:"+k, 0).Result())
	}
	must[string](t)(b.Set(ctx, "k", "b", 0).Result())
	for _, k := range names {
		if got := must[string](t)(a.Get(ctx, k).Result()); got != "a:"+k {
			t.Errorf("GET %q = %q", k, got)
		}
	}
	if got := must[string](t)(b.Get(ctx, "k").Result()); got != "b" {
		t.Errorf("tenant b's k = %q: tenant a's key named like b's prefix reached it", got)
	}
	keys := must[[]string](t)(a.Keys(ctx, "*").Result())
	slices.Sort(keys)
	want := slices.Clone(names)
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("KEYS * = %q, want %q", keys, want)
	}
	for pattern, want := range map[string][]string{
		"\\*":     {"*"},
		"\\[":     {"["},
		"[[]ab]":  {"[ab]"},
		"t:*":     {"t:" + ids[0] + ":k", "t:" + ids[1] + ":k"},
		"x\\\\*y": {"x\\*y"},
	} {
		got := must[[]string](t)(a.Keys(ctx, pattern).Result())
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("KEYS %q = %q, want %q", pattern, got, want)
		}
	}
	if got := must[[]string](t)(b.Keys(ctx, "*").Result()); !slices.Equal(got, []string{"k"}) {
		t.Errorf("tenant b KEYS * = %q", got)
	}
}

func TestFlushDeletesOnlyTheTenantsKeys(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	ctx := context.Background()
	a, b := p.client(ids[0]), p.client(ids[1])
	for _, c := range []*goredis.Client{a, b} {
		must[string](t)(c.MSet(ctx, "x", 1, "y", 2).Result())
	}
	if got := must[string](t)(a.FlushDB(ctx).Result()); got != "OK" {
		t.Errorf("FLUSHDB = %q", got)
	}
	if n := must[int64](t)(a.DBSize(ctx).Result()); n != 0 {
		t.Errorf("DBSIZE after FLUSHDB = %d", n)
	}
	if n := must[int64](t)(b.DBSize(ctx).Result()); n != 2 {
		t.Errorf("the other tenant's DBSIZE after FLUSHDB = %d, want 2", n)
	}
	must[string](t)(b.FlushAllAsync(ctx).Result())
	if keys := p.upstreamKeys(ids[1]); len(keys) != 0 {
		t.Errorf("keys left after FLUSHALL ASYNC: %q", keys)
	}
}

// TestRESP2Client covers the RESP2 reply shapes (XREAD arrays, flat
// arrays) with a client that never sends HELLO.
func TestRESP2Client(t *testing.T) {
	ids := tenants(1)
	p := startProxy(t, ids...)
	ctx := context.Background()
	c := p.client2(ids[0])
	must[string](t)(c.XAdd(ctx, &goredis.XAddArgs{Stream: "s", ID: "1-1", Values: []any{"f", "v"}}).Result())
	streams := must[[]goredis.XStream](t)(c.XRead(ctx, &goredis.XReadArgs{Streams: []string{"s", "0"}}).Result())
	if len(streams) != 1 || streams[0].Stream != "s" || len(streams[0].Messages) != 1 {
		t.Errorf("XREAD = %v", streams)
	}
	must[int64](t)(c.RPush(ctx, "l", "a").Result())
	if got := must[[]string](t)(c.BLPop(ctx, time.Second, "nothing", "l").Result()); !slices.Equal(got, []string{"l", "a"}) {
		t.Errorf("BLPOP = %q", got)
	}
	if got := must[[]string](t)(c.Keys(ctx, "*").Result()); !slices.Equal(got, []string{"s"}) {
		t.Errorf("KEYS = %q", got)
	}
}

// TestTransactionRepliesAreUnscoped: replies that carry names are rewritten
// inside EXEC's reply too.
func TestTransactionRepliesAreUnscoped(t *testing.T) {
	ids := tenants(1)
	p := startProxy(t, ids...)
	ctx := context.Background()
	c := p.client(ids[0])
	must[int64](t)(c.RPush(ctx, "l", "x").Result())
	var keys *goredis.StringSliceCmd
	var pop *goredis.StringSliceCmd
	var flush *goredis.StatusCmd
	_, err := c.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
		keys = pipe.Keys(ctx, "*")
		pop = pipe.BLPop(ctx, time.Second, "l")
		flush = pipe.FlushDB(ctx)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys.Val(), []string{"l"}) || !slices.Equal(pop.Val(), []string{"l", "x"}) || flush.Val() != "OK" {
		t.Errorf("EXEC replies: KEYS %q, BLPOP %q, FLUSHDB %q", keys.Val(), pop.Val(), flush.Val())
	}
}

// TestDefaultGoRedisClient uses go-redis with its default options (HELLO 3
// AUTH, CLIENT SETINFO on connect, retries): the proxy must be transparent
// to it.
func TestDefaultGoRedisClient(t *testing.T) {
	ids := tenants(1)
	p := startProxy(t, ids...)
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: p.addr, Password: p.token(ids[0])})
	defer c.Close()
	must[string](t)(c.Set(ctx, "k", "v", 0).Result())
	if got := must[string](t)(c.Get(ctx, "k").Result()); got != "v" {
		t.Errorf("GET = %q", got)
	}
}
