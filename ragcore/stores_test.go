package ragcore

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/ragcore/store/vector"
)

// testSettings returns Settings on fresh, private corners of the test
// servers (a new PostgreSQL database with the schema, a Redis key prefix, a
// MongoDB database), all removed when the test ends.
func testSettings(t *testing.T) Settings {
	t.Helper()
	ctx := context.Background()
	s := Settings{
		Postgres:  testutil.NewPostgresDB(t),
		Redis:     testutil.RedisURL(t),
		KeyPrefix: testutil.UniqueName("ragcore_test_") + ":",
	}
	mu, err := url.Parse(testutil.MongoURL(t))
	if err != nil {
		t.Fatal(err)
	}
	mu.Path = "/" + testutil.UniqueName("ragcore_test_")
	s.Mongo = mu.String()
	if err := ApplySchema(ctx, s, Schema(vector.Array, 256)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		opt, _ := redis.ParseURL(s.Redis)
		rc := redis.NewClient(opt)
		defer rc.Close()
		iter := rc.Scan(ctx, 0, s.KeyPrefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			rc.Del(ctx, iter.Val())
		}
		mc, err := mongo.Connect(options.Client().ApplyURI(s.Mongo))
		if err == nil {
			mc.Database(mu.Path[1:]).Drop(ctx)
			mc.Disconnect(ctx)
		}
	})
	return s
}

func openTest(t *testing.T, s Settings) *Engine {
	t.Helper()
	e, err := Open(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// corpus returns the files of testdata/corpus/name, sorted.
func corpus(t *testing.T, name string) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "corpus", name, "*.md"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("corpus %s: %v", name, err)
	}
	sort.Strings(paths)
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = string(b)
	}
	return out
}
