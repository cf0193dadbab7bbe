package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/ragcore"
	"github.com/tenantgate/tenantgate/ragcore/store/vector"
)

// privateSettings returns ragcore settings on a fresh database, key prefix
// and Mongo database of the test servers, removed when the test ends. Each
// test credential gets its own, standing in for what tenantgate does per
// tenant.
func privateSettings(t *testing.T) ragcore.Settings {
	t.Helper()
	ctx := context.Background()
	mu, err := url.Parse(testutil.MongoURL(t))
	if err != nil {
		t.Fatal(err)
	}
	mu.Path = "/" + testutil.UniqueName("ragcore_http_")
	s := ragcore.Settings{Postgres: testutil.NewPostgresDB(t), Redis: testutil.RedisURL(t), Mongo: mu.String(),
		KeyPrefix: testutil.UniqueName("ragcore_http_") + ":"}
	if err := ragcore.ApplySchema(ctx, s, ragcore.Schema(vector.Array, 256)); err != nil {
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
		if mc, err := mongo.Connect(options.Client().ApplyURI(s.Mongo)); err == nil {
			mc.Database(mu.Path[1:]).Drop(ctx)
			mc.Disconnect(ctx)
		}
	})
	return s
}

type client struct {
	t    *testing.T
	base string
	cred string
}

func (c client) do(method, path, contentType string, body io.Reader, out any) int {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.cred != "" {
		req.Header.Set("Authorization", c.cred)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	if out != nil && res.StatusCode < 300 {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			c.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return res.StatusCode
}

func (c client) json(method, path string, in, out any) int {
	c.t.Helper()
	b, _ := json.Marshal(in)
	return c.do(method, path, "application/json", bytes.NewReader(b), out)
}

func TestHTTPAPI(t *testing.T) {
	settings := map[string]ragcore.Settings{"alice-token": privateSettings(t), "bob-token": privateSettings(t)}
	var opened []string
	open := func(ctx context.Context, cred string) (*ragcore.Engine, error) {
		s, ok := settings[cred]
		if !ok {
			return nil, fmt.Errorf("no datastore accepts credential %q", cred)
		}
		opened = append(opened, cred)
		return ragcore.Open(ctx, s)
	}
	srv := New(open, 4, "alice-token", nil)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	alice := client{t, ts.URL, "Bearer alice-token"}
	bob := client{t, ts.URL, "Bearer bob-token"}

	if code := alice.do("GET", "/healthz", "", nil, nil); code != http.StatusOK {
		t.Fatalf("healthz %d", code)
	}
	company, err := os.ReadFile(filepath.Join("..", "testdata", "corpus", "acme", "company.md"))
	if err != nil {
		t.Fatal(err)
	}
	var res ragcore.IngestResult
	if code := alice.json("POST", "/documents/text", map[string]string{"name": "company.md", "text": string(company)}, &res); code != http.StatusOK || res.Chunks == 0 {
		t.Fatalf("POST /documents/text: %d %+v", code, res)
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, name := range []string{"customers.md", "industry-report.md"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "corpus", "acme", name))
		if err != nil {
			t.Fatal(err)
		}
		fw, _ := mw.CreateFormFile("file", name)
		fw.Write(data)
	}
	mw.Close()
	var results []ragcore.IngestResult
	if code := bob.do("POST", "/documents/files", mw.FormDataContentType(), &body, &results); code != http.StatusOK || len(results) != 2 {
		t.Fatalf("POST /documents/files: %d %+v", code, results)
	}

	var docs []map[string]any
	if code := alice.do("GET", "/documents", "", nil, &docs); code != http.StatusOK || len(docs) != 1 || docs[0]["name"] != "company.md" {
		t.Fatalf("alice GET /documents: %d %+v", code, docs)
	}
	if code := bob.do("GET", "/documents", "", nil, &docs); code != http.StatusOK || len(docs) != 2 {
		t.Fatalf("bob GET /documents: %d %+v", code, docs)
	}
	anonymous := client{t, ts.URL, ""} // default credential: alice's stores
	if code := anonymous.do("GET", "/documents", "", nil, &docs); code != http.StatusOK || len(docs) != 1 {
		t.Fatalf("anonymous GET /documents: %d %+v", code, docs)
	}

	var qr ragcore.Result
	if code := alice.json("POST", "/query", map[string]string{"query": "When is the Project Falcon launch?", "mode": "naive"}, &qr); code != http.StatusOK ||
		len(qr.Sources) == 0 || qr.Sources[0].Name != "company.md" || qr.Mode != ragcore.Naive {
		t.Fatalf("alice query: %d %+v", code, qr)
	}
	if code := bob.json("POST", "/query", map[string]string{"query": "When is the Project Falcon launch?"}, &qr); code != http.StatusOK || qr.Mode != ragcore.Hybrid {
		t.Fatalf("bob query: %d", code)
	}
	for _, s := range qr.Sources {
		if s.Name == "company.md" {
			t.Fatalf("bob sees alice's document: %+v", qr.Sources)
		}
	}

	errorCases := []struct {
		name   string
		c      client
		method string
		path   string
		body   any
		want   int
	}{
		{"bad mode", alice, "POST", "/query", map[string]string{"query": "x", "mode": "mix"}, http.StatusBadRequest},
		{"empty query", alice, "POST", "/query", map[string]string{"query": " "}, http.StatusBadRequest},
		{"empty document", alice, "POST", "/documents/text", map[string]string{"text": ""}, http.StatusUnprocessableEntity},
		{"unknown document", alice, "DELETE", "/documents/doc-nope", nil, http.StatusNotFound},
		{"not bearer", client{t, ts.URL, "Basic abc"}, "GET", "/documents", nil, http.StatusUnauthorized},
		{"refused credential", client{t, ts.URL, "Bearer mallory"}, "GET", "/documents", nil, http.StatusServiceUnavailable},
	}
	for _, tc := range errorCases {
		if code := tc.c.json(tc.method, tc.path, tc.body, nil); code != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, code, tc.want)
		}
	}

	if code := alice.do("DELETE", "/documents/"+res.DocID, "", nil, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d", code)
	}
	if code := alice.do("GET", "/documents", "", nil, &docs); code != http.StatusOK || len(docs) != 0 {
		t.Fatalf("after delete: %d %+v", code, docs)
	}
	if len(opened) != 2 {
		t.Errorf("engines opened for %v, want one per credential", opened)
	}
}
