package redis

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/proxy"
)

// TestRedteamCrossTenant sends tenant A's attacks on tenant B's keys through
// the proxy: each may fail or succeed, but B's keys must stay as they were,
// A's replies must not show B's values, and nothing may land outside A's
// prefix. The proxy's upstream is a database of its own (redteamDB), so that
// the keys other test packages write to the shared server at the same time
// cannot be mistaken for keys an attack made.
func TestRedteamCrossTenant(t *testing.T) {
	ids := tenants(2)
	p := startProxyOpts(t, proxy.ListenerConfig{}, Options{Upstream: redisDBURL(t, redteamDB)}, ids...)
	ctx := context.Background()
	a, b := p.client(ids[0]), p.client(ids[1])
	bk := func(k string) string { return "t:" + ids[1] + ":" + k }
	must[string](t)(b.Set(ctx, "secret", "S3CR3T", 0).Result())
	must[int64](t)(b.GeoAdd(ctx, "geo", &goredis.GeoLocation{Name: "B-MEMBER", Longitude: 13.4, Latitude: 38.1}).Result())
	must[int64](t)(b.RPush(ctx, "list", "S3CR3T").Result())
	must[string](t)(b.XAdd(ctx, &goredis.XAddArgs{Stream: "stream", ID: "1-1", Values: []any{"f", "S3CR3T"}}).Result())
	must[string](t)(b.XGroupCreate(ctx, "stream", "g", "0").Result())
	must[int64](t)(a.GeoAdd(ctx, "src", &goredis.GeoLocation{Name: "m", Longitude: 13.36, Latitude: 38.11}).Result())
	before := p.snapshot(ids[1])
	if len(before) != 4 {
		t.Fatalf("B's keys on the upstream: %d, want 4", len(before))
	}
	beforeAll := must[[]string](t)(p.upstream.Keys(ctx, "*").Result())

	cases := [][]any{
		{"GEORADIUS", "src", 13.36, 38.11, 100, "km", "STORE", "mine", "STORE", bk("geo")},
		{"GEORADIUS", "src", 13.36, 38.11, 100, "km", "STOREDIST", "mine", "STOREDIST", bk("geo")},
		{"GEORADIUS", "src", 13.36, 38.11, 100, "km", "STORE", "mine", "STOREDIST", bk("geo")},
		{"GEORADIUS", "src", 13.36, 38.11, 100, "km", "store", "mine", "StOrE", bk("geo")},
		{"GEORADIUSBYMEMBER", "src", "m", 100, "km", "STORE", "mine", "STORE", bk("geo")},
		{"GEORADIUSBYMEMBER", "src", "m", 100, "km", "STOREDIST", "mine", "STOREDIST", bk("geo")},
		{"SORT", "list", "STORE", "x", "STORE", bk("list")},
		{"SORT", "list", "BY", bk("*"), "GET", bk("secret")},
		{"SORT", "list", "GET", "#", "GET", "\\*"},
		{"SORT_RO", "list", "STORE", bk("list")},
		{"OBJECT", "ENCODING", bk("secret")},
		{"OBJECT", "FREQ", bk("secret")},
		{"MEMORY", "USAGE", bk("secret")},
		{"MEMORY", "USAGE", "x", "SAMPLES", "0"},
		{"DEBUG", "OBJECT", bk("secret")},
		{"LCS", bk("secret"), "x"},
		{"GETEX", bk("secret"), "PERSIST"},
		{"MSETNX", "x", "1", bk("secret"), "pwned"},
		{"XREADGROUP", "GROUP", "g", "c", "STREAMS", bk("stream"), ">"},
		{"XREAD", "COUNT", "1", "STREAMS", bk("stream"), "0"},
		{"XAUTOCLAIM", bk("stream"), "g", "c", "0", "0"},
		{"XCLAIM", bk("stream"), "g", "c", "0", "0-1"},
		{"WAIT", "0", "1"},
		{"CLIENT", "NO-TOUCH", "on"},
		{"CLIENT", "LIST"},
		{"CLIENT", "KILL", "TYPE", "normal"},
		{"KEYS", "[" + "a-z]*"},
		{"KEYS", "\\"},
		{"KEYS", "*" + ids[1] + "*"},
		{"SCAN", "0", "MATCH", "*", "MATCH", "*"},
		{"PUBSUB", "CHANNELS", "*"},
		{"PUBSUB", "NUMPAT"},
		{"RENAME", "src", bk("secret")},
		{"COPY", "src", bk("secret"), "DB", "0", "REPLACE"},
		{"EXISTS", bk("secret")},
		{"TOUCH", bk("secret")},
		{"DUMP", bk("secret")},
		{"RANDOMKEY"},
		{"MIGRATE", "127.0.0.1", "1", "", "0", "10", "KEYS", bk("secret")},
		{"EVAL", "return redis.call('GET', KEYS[1])", "1", bk("secret")},
		{"FUNCTION", "LIST"},
		{"SWAPDB", "0", "1"},
		{"SELECT", "1"},
		{"BITOP", "OR", "dst", bk("secret")},
		{"SINTERCARD", "1", bk("secret")},
		{"ZUNIONSTORE", "d", "1", bk("geo")},
		{"LMPOP", "1", bk("list"), "LEFT"},
		{"GEOSEARCHSTORE", bk("geo"), "src", "FROMLONLAT", 13.36, 38.11, "BYRADIUS", 100, "km"},
	}
	for _, args := range cases {
		t.Run(fmt.Sprint(args...), func(t *testing.T) {
			res, err := a.Do(ctx, args...).Result()
			if err == nil && strings.Contains(fmt.Sprint(res), "S3CR3T") {
				t.Errorf("%v shows B's value: %v", args, res)
			}
			if s := fmt.Sprint(res); err == nil && strings.Contains(s, "B-MEMBER") {
				t.Errorf("%v shows B's member: %v", args, res)
			}
			if after := p.snapshot(ids[1]); !maps.Equal(after, before) {
				t.Errorf("%v changed B's keys", args)
				before = after
			}
			for _, k := range must[[]string](t)(p.upstream.Keys(ctx, "*").Result()) {
				if !strings.HasPrefix(k, "t:") && !contains(beforeAll, k) {
					t.Errorf("%v made a key outside every prefix: %q", args, k)
					p.upstream.Del(ctx, k)
				}
			}
		})
	}
}

// redteamDB is the Redis database TestRedteamCrossTenant uses; no other test
// uses it.
const redteamDB = 13

// redisDBURL is the test Redis server's URL with database db selected.
func redisDBURL(t *testing.T, db int) string {
	u, err := url.Parse(testutil.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + strconv.Itoa(db)
	return u.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestRedteamGeoradiusRepeatedStore: GEORADIUS takes the last STORE while
// its key spec names the first; a repeated STORE/STOREDIST is refused, and
// a single one still stores under the tenant's prefix.
func TestRedteamGeoradiusRepeatedStore(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	ctx := context.Background()
	a, b := p.client(ids[0]), p.client(ids[1])
	must[int64](t)(b.GeoAdd(ctx, "geo", &goredis.GeoLocation{Name: "B-MEMBER", Longitude: 13.4, Latitude: 38.1}).Result())
	must[int64](t)(a.GeoAdd(ctx, "src", &goredis.GeoLocation{Name: "m", Longitude: 13.36, Latitude: 38.11}).Result())
	before := p.snapshot(ids[1])
	victim := "t:" + ids[1] + ":geo"
	for _, args := range [][]any{
		{"GEORADIUS", "src", 13.36, 38.11, 100, "km", "STORE", "mine", "STORE", victim},
		{"GEORADIUS", "src", 13.36, 38.11, 100, "km", "STOREDIST", "mine", "storedist", victim},
		{"GEORADIUSBYMEMBER", "src", "m", 100, "km", "STORE", "mine", "STORE", victim},
	} {
		if err := a.Do(ctx, args...).Err(); err == nil {
			t.Errorf("%v: want a refusal", args)
		}
	}
	if after := p.snapshot(ids[1]); !maps.Equal(after, before) {
		t.Fatal("B's keys changed")
	}
	if n := must[int64](t)(a.Do(ctx, "GEORADIUS", "src", 13.36, 38.11, 100, "km", "STORE", "mine").Int64()); n != 1 {
		t.Fatalf("single STORE stored %d", n)
	}
	if n := must[int64](t)(p.upstream.Exists(ctx, "t:"+ids[0]+":mine").Result()); n != 1 {
		t.Fatal("single STORE did not store under A's prefix")
	}
}

// TestRedteamRawProtocol: inline commands, a huge multibulk count and
// SUBSCRIBE inside MULTI must not reach B's key.
func TestRedteamRawProtocol(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	ctx := context.Background()
	must[string](t)(p.client(ids[1]).Set(ctx, "secret", "S3CR3T", 0).Result())
	before := p.snapshot(ids[1])
	bk := "t:" + ids[1] + ":secret"
	for _, payload := range []string{
		"GET " + bk + "\r\n",
		"GET \"" + bk + "\"\r\n",
		"DEL " + bk + "\r\n",
		"*2\r\n$3\r\nGET\r\n$" + fmt.Sprint(len(bk)) + "\r\n" + bk + "\r\n",
		"MULTI\r\nSUBSCRIBE " + bk + "\r\nDEL " + bk + "\r\nEXEC\r\n",
		"*2147483647\r\n$3\r\nDEL\r\n",
		"*-1\r\n*2\r\n$3\r\nDEL\r\n$" + fmt.Sprint(len(bk)) + "\r\n" + bk + "\r\n",
	} {
		conn, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		tok := p.token(ids[0])
		fmt.Fprintf(conn, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(tok), tok)
		fmt.Fprint(conn, payload)
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		got, _ := io.ReadAll(conn)
		_ = conn.Close()
		if strings.Contains(string(got), "S3CR3T") {
			t.Errorf("%q shows B's value: %q", payload, got)
		}
		if after := p.snapshot(ids[1]); !maps.Equal(after, before) {
			t.Fatalf("%q changed B's keys", payload)
		}
	}
}
