package kv

import (
	"context"
	"reflect"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tenantgate/tenantgate/internal/testutil"
)

func newTestStore(t *testing.T) (*Redis, *redis.Client) {
	t.Helper()
	opt, err := redis.ParseURL(testutil.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	prefix := testutil.UniqueName("ragcore_test_") + ":"
	s, err := NewRedis(redis.NewClient(opt), prefix)
	if err != nil {
		t.Fatal(err)
	}
	raw := redis.NewClient(opt)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := raw.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			raw.Del(ctx, iter.Val())
		}
		raw.Close()
		s.Close()
	})
	return s, raw
}

func TestRedisStore(t *testing.T) {
	ctx := context.Background()
	s, raw := newTestStore(t)
	if err := s.Put(ctx, Chunks, map[string]string{"c1": "one", "c2": "two", "c3": "three"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, Docs, map[string]string{"d1": "doc"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := raw.Get(ctx, s.prefix+"chunk:c1").Result(); got != "one" {
		t.Fatalf("raw key holds %q", got)
	}
	tests := []struct {
		name string
		ids  []string
		want map[string]string
	}{
		{"some", []string{"c1", "c3", "missing"}, map[string]string{"c1": "one", "c3": "three"}},
		{"none", nil, map[string]string{}},
	}
	for _, tt := range tests {
		got, err := s.Get(ctx, Chunks, tt.ids...)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Get = %v, want %v", tt.name, got, tt.want)
		}
	}
	ids, err := s.IDs(ctx, Chunks)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"c1", "c2", "c3"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("IDs = %v, want %v", ids, want)
	}
	if err := s.Delete(ctx, Chunks, "c1", "c2", "missing"); err != nil {
		t.Fatal(err)
	}
	if ids, _ = s.IDs(ctx, Chunks); !reflect.DeepEqual(ids, []string{"c3"}) {
		t.Fatalf("after delete IDs = %v", ids)
	}
	if ids, _ = s.IDs(ctx, Docs); !reflect.DeepEqual(ids, []string{"d1"}) {
		t.Fatalf("docs IDs = %v", ids)
	}
}

func TestRedisScanManyKeys(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	vals := map[string]string{}
	for i := range 1200 {
		vals[string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676))] = "v"
	}
	if err := s.Put(ctx, Cache, vals); err != nil {
		t.Fatal(err)
	}
	ids, err := s.IDs(ctx, Cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(vals) {
		t.Fatalf("IDs found %d keys, want %d", len(ids), len(vals))
	}
}

func TestNewRedisRejectsGlobPrefix(t *testing.T) {
	if _, err := NewRedis(nil, "a*"); err == nil {
		t.Fatal("glob prefix accepted")
	}
}
