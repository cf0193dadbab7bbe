package ragcore

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tenantgate/tenantgate/ragcore/embed"
	"github.com/tenantgate/tenantgate/ragcore/store/kv"
)

// fakeOpenAI embeds with the local embedder and answers with a fixed
// reply that quotes how much context it was given.
func fakeOpenAI(t *testing.T, chats, embeds *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Input    []string `json:"input"`
			Messages []struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/embeddings":
			embeds.Add(1)
			var data []map[string]any
			for i, in := range req.Input {
				data = append(data, map[string]any{"index": i, "embedding": embed.Local{}.Vector(in)})
			}
			json.NewEncoder(w).Encode(map[string]any{"data": data})
		case "/chat/completions":
			chats.Add(1)
			sys := req.Messages[0].Content
			reply := "Falcon launches on 14 March (company.md)"
			if !strings.Contains(sys, "Falcon") {
				reply = "I do not know."
			}
			json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]string{"content": reply}}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestQueryWithChatModel(t *testing.T) {
	ctx := context.Background()
	var chats, embeds atomic.Int32
	srv := fakeOpenAI(t, &chats, &embeds)
	s := testSettings(t)
	s.LLM = LLMSettings{BaseURL: srv.URL, ChatModel: "m", EmbedModel: "e", EmbedDims: 256}
	e := openTest(t, s)
	if _, err := e.Ingest(ctx, "company.md", corpus(t, "acme")["company.md"]); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		res, err := e.Query(ctx, "When does Project Falcon launch?", Naive)
		if err != nil {
			t.Fatal(err)
		}
		if res.Answer != "Falcon launches on 14 March (company.md)" || len(res.Sources) != 1 || res.Sources[0].Name != "company.md" {
			t.Fatalf("result %+v", res)
		}
	}
	if chats.Load() != 1 {
		t.Errorf("chat called %d times, want 1 (the second answer comes from the cache)", chats.Load())
	}
	cached, err := e.cfg.KV.IDs(ctx, kv.Cache)
	if err != nil || len(cached) == 0 {
		t.Fatalf("no cached responses in KV: %v", err)
	}
	before := embeds.Load()
	if _, err := e.Query(ctx, "When does Project Falcon launch?", Local); err != nil {
		t.Fatal(err)
	}
	if embeds.Load() != before {
		t.Errorf("query embedding not cached")
	}
}
