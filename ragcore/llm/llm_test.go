package llm

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// memCache is an in-memory Cache.
type memCache struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *memCache) Get(_ context.Context, k string) (string, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok, nil
}

func (c *memCache) Put(_ context.Context, k, v string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = v
	return nil
}

// fakeAPI serves /embeddings (vector = [len(input), index]) and
// /chat/completions (reply from the reply func), counting calls.
type fakeAPI struct {
	mu    sync.Mutex
	calls map[string]int
	auth  string
	reply func(user string) string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls[r.URL.Path]++
	f.auth = r.Header.Get("Authorization")
	f.mu.Unlock()
	var req struct {
		Model    string   `json:"model"`
		Input    []string `json:"input"`
		Messages []struct{ Role, Content string }
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch r.URL.Path {
	case "/v1/embeddings":
		type item struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		}
		var data []item
		for i := len(req.Input) - 1; i >= 0; i-- { // out of order on purpose
			data = append(data, item{i, []float32{float32(len(req.Input[i])), float32(i)}})
		}
		json.NewEncoder(w).Encode(map[string]any{"data": data})
	case "/v1/chat/completions":
		if req.Model == "broken" {
			http.Error(w, `{"error":"no such model"}`, http.StatusNotFound)
			return
		}
		reply := f.reply(req.Messages[len(req.Messages)-1].Content)
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]string{"role": "assistant", "content": reply}}}})
	default:
		http.NotFound(w, r)
	}
}

func newFake(t *testing.T, reply func(string) string) (*fakeAPI, *Client) {
	f := &fakeAPI{calls: map[string]int{}, reply: reply}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, &Client{BaseURL: srv.URL + "/v1/", APIKey: "sk-test", ChatModel: "chat-m", EmbedModel: "emb-m", Dims: 2,
		Cache: &memCache{m: map[string]string{}}}
}

func TestEmbedCachesPerText(t *testing.T) {
	ctx := context.Background()
	f, c := newFake(t, nil)
	got, err := c.Embed(ctx, []string{"a", "bbb"})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]float32{{1, 0}, {3, 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Embed = %v, want %v", got, want)
	}
	// "a" is cached; only "cc" is requested, as index 0 of a one-item call
	got, err = c.Embed(ctx, []string{"cc", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]float32{{2, 0}, {1, 0}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("second Embed = %v, want %v", got, want)
	}
	if _, err = c.Embed(ctx, []string{"a", "bbb", "cc"}); err != nil {
		t.Fatal(err)
	}
	if f.calls["/v1/embeddings"] != 2 || f.auth != "Bearer sk-test" || c.Dim() != 2 {
		t.Fatalf("calls %v auth %q", f.calls, f.auth)
	}
}

func TestChatCachesAndReportsErrors(t *testing.T) {
	ctx := context.Background()
	f, c := newFake(t, func(u string) string { return "echo: " + u })
	for range 2 {
		got, err := c.Chat(ctx, "sys", "hello")
		if err != nil || got != "echo: hello" {
			t.Fatalf("Chat = %q, %v", got, err)
		}
	}
	if f.calls["/v1/chat/completions"] != 1 {
		t.Fatalf("chat called %d times, want 1 (cached)", f.calls["/v1/chat/completions"])
	}
	c.ChatModel = "broken"
	if _, err := c.Chat(ctx, "sys", "hello"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("error from a failing endpoint: %v", err)
	}
}
