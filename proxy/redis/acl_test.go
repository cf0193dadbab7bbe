package redis

import (
	"context"
	"net/url"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tenantgate/tenantgate/internal/testutil"
)

// TestUpstreamACLUser runs the engine as an upstream user restricted the
// way docs/redis.md recommends (prefixed keys and channels only, no admin
// commands): the proxy authenticates with it, and everything a tenant does
// still works.
func TestUpstreamACLUser(t *testing.T) {
	base := testutil.RedisURL(t)
	opts, err := goredis.ParseURL(base)
	if err != nil {
		t.Fatal(err)
	}
	admin := goredis.NewClient(opts)
	defer admin.Close()
	ctx := context.Background()
	user, password := testutil.UniqueName("tg_proxy_"), testutil.UniqueName("pw")
	rules := strings.Fields("on >" + password + " ~t:* &t:* +@all -@admin -@dangerous +eval +keys +unlink +info +sort +sort_ro +restore")
	args := append([]any{"ACL", "SETUSER", user}, toAny(rules)...)
	if err := admin.Do(ctx, args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", user) })

	u, _ := url.Parse(base)
	u.User = url.UserPassword(user, password)
	t.Setenv("TENANTGATE_TEST_REDIS_URL", u.String())
	ids := tenants(1)
	p := startProxy(t, ids...)
	c := p.client(ids[0])
	must[string](t)(c.Set(ctx, "k", "v", 0).Result())
	if got := must[[]string](t)(c.Keys(ctx, "*").Result()); len(got) != 1 || got[0] != "k" {
		t.Errorf("KEYS = %q", got)
	}
	if n := must[int64](t)(c.DBSize(ctx).Result()); n != 1 {
		t.Errorf("DBSIZE = %d", n)
	}
	if n := must[int64](t)(c.Publish(ctx, "ch", "x").Result()); n != 0 {
		t.Errorf("PUBLISH = %d", n)
	}
	must[string](t)(c.FlushDB(ctx).Result())
	if n := must[int64](t)(c.Exists(ctx, "k").Result()); n != 0 {
		t.Error("FLUSHDB left the key")
	}
	// The proxy's user itself cannot reach unprefixed keys: the second layer.
	direct := goredis.NewClient(&goredis.Options{Addr: opts.Addr, Username: user, Password: password})
	defer direct.Close()
	if err := direct.Get(ctx, "unprefixed").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("the proxy's ACL user read an unprefixed key: %v", err)
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
