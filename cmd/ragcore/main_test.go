package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/ragcore"
)

// run runs one command and returns what it printed.
func run(t *testing.T, cmd func(context.Context, []string) error, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	stdout, stderr = &out, &errOut
	t.Cleanup(func() { stdout, stderr = os.Stdout, os.Stderr })
	if err := cmd(context.Background(), args); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

func TestSchemaWithoutServer(t *testing.T) {
	tests := []struct {
		args        []string
		want, avoid string
	}{
		{[]string{"--postgres", ""}, "embedding float4[] NOT NULL", "vector("},
		{[]string{"--postgres", "", "--vector", "pgvector", "--embed-dims", "64"}, "embedding vector(64) NOT NULL", "float4[]"},
	}
	for _, tt := range tests {
		out := run(t, cmdSchema, tt.args...)
		if !strings.Contains(out, tt.want) || strings.Contains(out, tt.avoid) || !strings.Contains(out, "CREATE TABLE IF NOT EXISTS ragcore_entities") {
			t.Errorf("schema %v:\n%s", tt.args, out)
		}
	}
}

func TestCommands(t *testing.T) {
	ctx := context.Background()
	prefix := testutil.UniqueName("ragcore_cli_") + ":"
	mu, err := url.Parse(testutil.MongoURL(t))
	if err != nil {
		t.Fatal(err)
	}
	mu.Path = "/" + testutil.UniqueName("ragcore_cli_")
	stores := []string{"--postgres", testutil.NewPostgresDB(t), "--redis", testutil.RedisURL(t),
		"--mongo", mu.String(), "--key-prefix", prefix, "--credential", ""}
	t.Cleanup(func() {
		opt, _ := redis.ParseURL(testutil.RedisURL(t))
		rc := redis.NewClient(opt)
		defer rc.Close()
		iter := rc.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			rc.Del(ctx, iter.Val())
		}
		if mc, err := mongo.Connect(options.Client().ApplyURI(mu.String())); err == nil {
			mc.Database(mu.Path[1:]).Drop(ctx)
			mc.Disconnect(ctx)
		}
	})
	with := func(args ...string) []string { return append(append([]string{}, stores...), args...) }

	run(t, cmdSchema, with("--apply")...)
	corpus := filepath.Join("..", "..", "ragcore", "testdata", "corpus", "techstart")
	out := run(t, cmdIngest, with("--quiet", corpus)...)
	if strings.Count(out, "ingested ") != 3 {
		t.Fatalf("ingest:\n%s", out)
	}
	if out = run(t, cmdIngest, with(filepath.Join(corpus, "company.md"))...); !strings.HasPrefix(out, "unchanged ") {
		t.Fatalf("re-ingest:\n%s", out)
	}
	if out = run(t, cmdStatus, with()...); strings.Count(out, "processed") != 3 {
		t.Fatalf("status:\n%s", out)
	}
	out = run(t, cmdQuery, with("--mode", "local", "--json", "Who is Amara Okafor?")...)
	var res ragcore.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Sources) == 0 || res.Mode != ragcore.Local {
		t.Fatalf("query --json: %v\n%s", err, out)
	}
	if out = run(t, cmdQuery, with("Project Heron")...); !strings.Contains(out, "Sources:") || !strings.Contains(out, "company.md") {
		t.Fatalf("query:\n%s", out)
	}
	if out = run(t, cmdDelete, with(res.Sources[0].DocID)...); !strings.Contains(out, "deleted "+res.Sources[0].DocID) {
		t.Fatalf("delete:\n%s", out)
	}
	if out = run(t, cmdStatus, with()...); strings.Count(out, "processed") != 2 {
		t.Fatalf("status after delete:\n%s", out)
	}
}

// TestFlagsAfterArguments: flags may follow the arguments, as the usage
// shows them (`ragcore query "QUESTION" --mode naive`), and "--" ends them.
func TestFlagsAfterArguments(t *testing.T) {
	tests := []struct {
		args     []string
		mode     string
		asJSON   bool
		question []string
	}{
		{[]string{"Q", "--mode", "naive"}, "naive", false, []string{"Q"}},
		{[]string{"--mode=local", "Q", "--json"}, "local", true, []string{"Q"}},
		{[]string{"Q"}, "hybrid", false, []string{"Q"}},
		{[]string{"--json", "--", "--mode"}, "hybrid", true, []string{"--mode"}},
		{[]string{"a", "--json", "b"}, "hybrid", true, []string{"a", "b"}},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("query", flag.ContinueOnError)
		mode := fs.String("mode", "hybrid", "")
		asJSON := fs.Bool("json", false, "")
		if err := parse(fs, tt.args, -1, "Q"); err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if *mode != tt.mode || *asJSON != tt.asJSON || !slices.Equal(fs.Args(), tt.question) {
			t.Errorf("%q: mode %q json %v args %q, want %q %v %q", tt.args, *mode, *asJSON, fs.Args(), tt.mode, tt.asJSON, tt.question)
		}
	}
}
