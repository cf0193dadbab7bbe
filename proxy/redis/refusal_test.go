package redis

import (
	"context"
	"maps"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// snapshot is every key of a tenant on the upstream with its DUMP.
func (p *testProxy) snapshot(tenant string) map[string]string {
	p.t.Helper()
	out := map[string]string{}
	for _, k := range p.upstreamKeys(tenant) {
		out[k] = must[string](p.t)(p.upstream.Dump(context.Background(), k).Result())
	}
	return out
}

// TestRefusedCommandsChangeNothing sends each command the proxy refuses:
// each gets an error, the connection keeps working, the refusal is audited,
// and neither tenant's data changes.
func TestRefusedCommandsChangeNothing(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	ctx := context.Background()
	a, b := p.client(ids[0]), p.client(ids[1])
	for _, c := range []*goredis.Client{a, b} {
		must[string](t)(c.MSet(ctx, "k", "v", "w_1", "3").Result())
		must[int64](t)(c.RPush(ctx, "l", "1", "2").Result())
	}
	before := []map[string]string{p.snapshot(ids[0]), p.snapshot(ids[1])}

	refusedCommands := [][]any{
		{"EVAL", "redis.call('DEL', KEYS[1])", "1", "k"},
		{"EVALSHA", "0000000000000000000000000000000000000000", "0"},
		{"EVAL_RO", "return 1", "0"},
		{"FCALL", "f", "0"},
		{"FUNCTION", "FLUSH"},
		{"SCRIPT", "FLUSH"},
		{"MIGRATE", "127.0.0.1", "1", "k", "0", "100"},
		{"MOVE", "k", "1"},
		{"SWAPDB", "0", "1"},
		{"COPY", "k", "k2", "DB", "1"},
		{"SELECT", "1"},
		{"DEBUG", "SLEEP", "0"},
		{"CONFIG", "SET", "maxmemory", "1"},
		{"CLIENT", "LIST"},
		{"CLIENT", "KILL", "TYPE", "normal"},
		{"CLIENT", "PAUSE", "1"},
		{"CLIENT", "NO-EVICT", "on"},
		{"CLIENT", "TRACKING", "on", "REDIRECT", "1"},
		{"SLOWLOG", "RESET"},
		{"LATENCY", "RESET"},
		{"MEMORY", "DOCTOR"},
		{"MEMORY", "STATS"},
		{"INFO"},
		{"INFO", "keyspace"},
		{"INFO", "commandstats"},
		{"ACL", "WHOAMI"},
		{"CLUSTER", "INFO"},
		{"RANDOMKEY"},
		{"SAVE"},
		{"BGREWRITEAOF"},
		{"SHUTDOWN", "NOSAVE"},
		{"MODULE", "LIST"},
		{"REPLICAOF", "NO", "ONE"},
		{"FAILOVER", "ABORT"},
		{"PUBSUB", "NUMPAT"},
		{"NOSUCHCOMMAND", "k"},
		{"FLUSHDB", "NOW"},
		{"GET"},
		{"ZUNIONSTORE", "d", "9", "k"},
	}
	for _, cmd := range refusedCommands {
		err := a.Do(ctx, cmd...).Err()
		if err == nil || !strings.HasPrefix(err.Error(), "ERR ") {
			t.Errorf("%v: err = %v, want an ERR refusal", cmd, err)
		}
	}
	if got := must[string](t)(a.Get(ctx, "k").Result()); got != "v" {
		t.Errorf("connection after the refusals: GET = %q", got)
	}
	for i, id := range ids {
		if after := p.snapshot(id); !maps.Equal(before[i], after) {
			t.Errorf("tenant %d's data changed:\nbefore %v\nafter  %v", i, before[i], after)
		}
	}
	for _, reason := range []string{reasonScript, reasonOtherDatabase, reasonServerWide, reasonUnknownCommand, reasonSyntax, reasonUnsupported} {
		if !strings.Contains(p.auditLog(), `"reason":"`+reason+`"`) {
			t.Errorf("no audited refusal with reason %s", reason)
		}
	}
}

func TestInfoServerAndSelectOfTheConfiguredDatabasePass(t *testing.T) {
	ids := tenants(1)
	p := startProxy(t, ids...)
	ctx := context.Background()
	c := p.client(ids[0])
	if info := must[string](t)(c.Info(ctx, "server").Result()); !strings.Contains(info, "redis_version") || strings.Contains(info, "# Keyspace") {
		t.Errorf("INFO server = %q", info)
	}
	if err := c.Do(ctx, "SELECT", "0").Err(); err != nil {
		t.Errorf("SELECT 0: %v", err)
	}
}

// TestSortPatternsAreScoped: SORT BY/GET name other keys, which must be the
// tenant's own.
func TestSortPatternsAreScoped(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	ctx := context.Background()
	a, b := p.client(ids[0]), p.client(ids[1])
	must[int64](t)(a.RPush(ctx, "ids", "1", "2").Result())
	must[string](t)(a.MSet(ctx, "w_1", "20", "w_2", "10", "name_1", "one", "name_2", "two").Result())
	must[string](t)(b.MSet(ctx, "w_1", "1", "w_2", "99", "name_1", "B1", "name_2", "B2").Result())
	got := must[[]string](t)(a.Sort(ctx, "ids", &goredis.Sort{By: "w_*", Get: []string{"name_*", "#"}}).Result())
	if strings.Join(got, ",") != "two,2,one,1" {
		t.Errorf("SORT BY w_* GET name_* GET # = %q", got)
	}
}
