package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

func receive(t *testing.T, ps *goredis.PubSub) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	msg, err := ps.Receive(ctx)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return msg
}

func testPubSub(t *testing.T, newClient func(p *testProxy, tenant string) *goredis.Client) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	ctx := context.Background()
	a, b := newClient(p, ids[0]), newClient(p, ids[1])

	sub := a.Subscribe(ctx, "news")
	defer sub.Close()
	if m, ok := receive(t, sub).(*goredis.Subscription); !ok || m.Channel != "news" || m.Kind != "subscribe" {
		t.Fatalf("subscribe confirmation = %#v", m)
	}
	if err := sub.PSubscribe(ctx, "n*", `\[x`); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"n*", `\[x`} {
		if m, ok := receive(t, sub).(*goredis.Subscription); !ok || m.Channel != want || m.Kind != "psubscribe" {
			t.Fatalf("psubscribe confirmation = %#v, want %s", m, want)
		}
	}
	// The other tenant publishing on the same channel name reaches nobody here.
	if n := must[int64](t)(b.Publish(ctx, "news", "not for a").Result()); n != 0 {
		t.Errorf("PUBLISH by the other tenant reached %d subscribers", n)
	}
	if n := must[int64](t)(a.Publish(ctx, "news", "hello").Result()); n != 2 {
		t.Errorf("PUBLISH reached %d subscriptions, want 2 (channel and pattern)", n)
	}
	must[int64](t)(a.Publish(ctx, "[x", "literal").Result())
	got := map[string]bool{}
	for range 3 {
		m, ok := receive(t, sub).(*goredis.Message)
		if !ok {
			t.Fatalf("expected a message, got %#v", m)
		}
		got[m.Pattern+"|"+m.Channel+"|"+m.Payload] = true
	}
	for _, want := range []string{"|news|hello", "n*|news|hello", `\[x|[x|literal`} {
		if !got[want] {
			t.Errorf("missing message %q; got %v", want, got)
		}
	}
	channels := must[[]string](t)(a.PubSubChannels(ctx, "*").Result())
	if len(channels) != 1 || channels[0] != "news" {
		t.Errorf("PUBSUB CHANNELS = %q", channels)
	}
	if n := must[map[string]int64](t)(b.PubSubNumSub(ctx, "news").Result()); n["news"] != 0 {
		t.Errorf("the other tenant's PUBSUB NUMSUB news = %v", n)
	}
	if n := must[map[string]int64](t)(a.PubSubNumSub(ctx, "news").Result()); n["news"] != 1 {
		t.Errorf("PUBSUB NUMSUB news = %v", n)
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if m, ok := receive(t, sub).(*goredis.Subscription); !ok || m.Kind != "unsubscribe" || m.Channel != "news" {
		t.Fatalf("unsubscribe confirmation = %#v", m)
	}
	if err := sub.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := receive(t, sub).(*goredis.Pong); !ok {
		t.Fatal("no pong while subscribed to patterns")
	}
}

func TestPubSubRESP3(t *testing.T) { testPubSub(t, (*testProxy).client) }
func TestPubSubRESP2(t *testing.T) { testPubSub(t, (*testProxy).client2) }

// TestUnsubscribeAllThenCommandsAgainRESP2 checks the reply accounting
// around RESP2 subscribed mode: one confirmation per channel, then regular
// replies again.
func TestUnsubscribeAllThenCommandsAgainRESP2(t *testing.T) {
	ids := tenants(1)
	p := startProxy(t, ids...)
	c := dialRaw(t, p)
	c.do("AUTH", p.token(ids[0]))
	c.do("SET", "k", "v")
	if got := c.do("SUBSCRIBE", "a", "b"); got != "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n" {
		t.Fatalf("SUBSCRIBE a b, first confirmation = %q", got)
	}
	if got := c.read(); got != "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n" {
		t.Fatalf("second confirmation = %q", got)
	}
	if got := c.do("SSUBSCRIBE", "s"); got != "*3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n" {
		t.Fatalf("SSUBSCRIBE = %q", got)
	}
	c.do("UNSUBSCRIBE")
	c.read()
	if got := c.do("PING"); got != "*2\r\n$4\r\npong\r\n$0\r\n\r\n" {
		t.Errorf("PING still subscribed to a shard channel = %q", got)
	}
	if got := c.do("SUNSUBSCRIBE"); got != "*3\r\n$12\r\nsunsubscribe\r\n$1\r\ns\r\n:0\r\n" {
		t.Fatalf("SUNSUBSCRIBE = %q", got)
	}
	if got := c.do("GET", "k"); got != "$1\r\nv\r\n" {
		t.Errorf("GET after leaving subscribed mode = %q", got)
	}
	if got := c.do("UNSUBSCRIBE"); got != "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n" {
		t.Errorf("UNSUBSCRIBE with no subscriptions = %q", got)
	}
	if got := c.do("GET", "k"); got != "$1\r\nv\r\n" {
		t.Errorf("GET = %q", got)
	}
}

func TestShardChannelsRESP3(t *testing.T) {
	ids := tenants(2)
	p := startProxy(t, ids...)
	ctx := context.Background()
	a, b := p.client(ids[0]), p.client(ids[1])
	sub := a.SSubscribe(ctx, "orders")
	defer sub.Close()
	if m, ok := receive(t, sub).(*goredis.Subscription); !ok || m.Channel != "orders" {
		t.Fatalf("ssubscribe confirmation = %#v", m)
	}
	if n := must[int64](t)(b.SPublish(ctx, "orders", "b").Result()); n != 0 {
		t.Errorf("SPUBLISH by the other tenant reached %d", n)
	}
	must[int64](t)(a.SPublish(ctx, "orders", "a").Result())
	if m, ok := receive(t, sub).(*goredis.Message); !ok || m.Channel != "orders" || m.Payload != "a" {
		t.Errorf("smessage = %#v", m)
	}
	if got := must[[]string](t)(a.PubSubShardChannels(ctx, "*").Result()); len(got) != 1 || got[0] != "orders" {
		t.Errorf("PUBSUB SHARDCHANNELS = %q", got)
	}
}
