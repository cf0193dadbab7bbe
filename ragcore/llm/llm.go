// Package llm is ragcore's client for OpenAI-compatible model endpoints:
// embeddings (POST {base}/embeddings) and chat completions (POST
// {base}/chat/completions), with every response cached under a hash of
// its request (model and prompt), so re-running an ingest or a question
// costs no model call. It provides an embed.Embedder, an extract.Extractor
// using a LightRAG-style extraction prompt, and the answer step of queries.
package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tenantgate/tenantgate/ragcore/ids"
)

// Cache stores responses by key. Get reports whether key was found.
type Cache interface {
	Get(ctx context.Context, key string) (string, bool, error)
	Put(ctx context.Context, key, value string) error
}

// Client calls one OpenAI-compatible endpoint.
type Client struct {
	BaseURL    string // e.g. https://api.openai.com/v1
	APIKey     string // sent as a bearer token when set
	ChatModel  string
	EmbedModel string
	Dims       int // embedding size the model returns
	HTTP       *http.Client
	Cache      Cache // optional
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 2 * time.Minute}
}

func (c *Client) post(ctx context.Context, path string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	if c.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	res, err := c.httpClient().Do(hr)
	if err != nil {
		return fmt.Errorf("llm: %s: %w", path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("llm: %s: %w", path, err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("llm: %s: %s: %s", path, res.Status, bytes.TrimSpace(data[:min(len(data), 512)]))
	}
	if err := json.Unmarshal(data, resp); err != nil {
		return fmt.Errorf("llm: %s: decode response: %w", path, err)
	}
	return nil
}

func (c *Client) cached(ctx context.Context, key string) (string, bool, error) {
	if c.Cache == nil {
		return "", false, nil
	}
	return c.Cache.Get(ctx, key)
}

func (c *Client) remember(ctx context.Context, key, value string) error {
	if c.Cache == nil {
		return nil
	}
	return c.Cache.Put(ctx, key, value)
}

// Dim implements embed.Embedder.
func (c *Client) Dim() int { return c.Dims }

// Embed implements embed.Embedder: cached vectors are reused, the others
// requested in one call.
func (c *Client) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	var missing []int
	for i, t := range texts {
		raw, ok, err := c.cached(ctx, ids.Cache("embed", c.EmbedModel, t))
		if err != nil {
			return nil, err
		}
		if ok && json.Unmarshal([]byte(raw), &out[i]) == nil {
			continue
		}
		missing = append(missing, i)
	}
	if len(missing) == 0 {
		return out, nil
	}
	input := make([]string, len(missing))
	for j, i := range missing {
		input[j] = texts[i]
	}
	var resp struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	if err := c.post(ctx, "/embeddings", map[string]any{"model": c.EmbedModel, "input": input}, &resp); err != nil {
		return nil, err
	}
	if len(resp.Data) != len(missing) {
		return nil, fmt.Errorf("llm: /embeddings returned %d vectors for %d inputs", len(resp.Data), len(missing))
	}
	for _, d := range resp.Data {
		if d.Index < 0 || d.Index >= len(missing) {
			return nil, fmt.Errorf("llm: /embeddings returned index %d out of range", d.Index)
		}
		i := missing[d.Index]
		out[i] = d.Embedding
		raw, _ := json.Marshal(d.Embedding)
		if err := c.remember(ctx, ids.Cache("embed", c.EmbedModel, texts[i]), string(raw)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Chat returns the model's reply to a system and a user message
// (temperature 0), from the cache when the same prompt was asked before.
func (c *Client) Chat(ctx context.Context, system, user string) (string, error) {
	key := ids.Cache("chat", c.ChatModel, system, user)
	if reply, ok, err := c.cached(ctx, key); err != nil || ok {
		return reply, err
	}
	var resp struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	req := map[string]any{
		"model":       c.ChatModel,
		"temperature": 0,
		"messages": []map[string]string{
			{"role": "system", "content": system},
			{"role": "user", "content": user},
		},
	}
	if err := c.post(ctx, "/chat/completions", req, &resp); err != nil {
		return "", err
	}
	if len(resp.Choices) == 0 {
		return "", fmt.Errorf("llm: /chat/completions returned no choices")
	}
	reply := resp.Choices[0].Message.Content
	return reply, c.remember(ctx, key, reply)
}
