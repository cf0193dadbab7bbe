// Package ragcore is a small LightRAG-style retrieval-augmented generation
// engine: it ingests text and markdown documents into four storage roles
// (key-value texts on Redis, vectors on PostgreSQL, a knowledge graph on
// Neo4j or PostgreSQL, document status on MongoDB) and answers questions
// from them in naive, local, global or hybrid mode.
//
// ragcore is written for exactly one tenant and knows nothing of tenants:
// ids are content hashes, tables and keys are plain, and the credential it
// is given is only ever a datastore password. Run behind tenantgate with a
// tenant's token as that password, each instance sees only its tenant's
// data; that is the point of the exercise, and why this package must never
// import tenantgate's policy or proxy packages.
//
// Engine holds the pipeline and the queries over any implementations of the
// storage interfaces; Open builds one from datastore addresses.
package ragcore

import (
	"context"
	"errors"
	"fmt"

	"github.com/tenantgate/tenantgate/ragcore/chunk"
	"github.com/tenantgate/tenantgate/ragcore/embed"
	"github.com/tenantgate/tenantgate/ragcore/extract"
	"github.com/tenantgate/tenantgate/ragcore/store/graph"
	"github.com/tenantgate/tenantgate/ragcore/store/kv"
	"github.com/tenantgate/tenantgate/ragcore/store/status"
	"github.com/tenantgate/tenantgate/ragcore/store/vector"
)

// Chatter answers a prompt; *llm.Client is one.
type Chatter interface {
	Chat(ctx context.Context, system, user string) (string, error)
}

// Stores are the four storage roles.
type Stores struct {
	KV      kv.Store
	Vectors vector.Store
	Graph   graph.Store
	Status  status.Store
}

// Config assembles an Engine. Stores are required; the rest have defaults.
type Config struct {
	Stores
	Embedder  embed.Embedder    // default embed.Local{}
	Extractor extract.Extractor // default extract.Local{}
	Chat      Chatter           // optional: when set, queries return an answer
	Chunk     chunk.Options     // default chunk.DefaultOptions
	TopK      int               // default 8
	Progress  func(msg string)  // optional: one line per ingest step
}

// Engine is one ragcore instance over one set of stores.
type Engine struct{ cfg Config }

// New returns an engine over cfg.
func New(cfg Config) (*Engine, error) {
	if cfg.KV == nil || cfg.Vectors == nil || cfg.Graph == nil || cfg.Status == nil {
		return nil, errors.New("ragcore: all four stores are required")
	}
	if cfg.Embedder == nil {
		cfg.Embedder = embed.Local{}
	}
	if cfg.Extractor == nil {
		cfg.Extractor = extract.Local{}
	}
	if cfg.Chunk == (chunk.Options{}) {
		cfg.Chunk = chunk.DefaultOptions
	}
	if cfg.TopK <= 0 {
		cfg.TopK = 8
	}
	return &Engine{cfg: cfg}, nil
}

func (e *Engine) progress(format string, args ...any) {
	if e.cfg.Progress != nil {
		e.cfg.Progress(fmt.Sprintf(format, args...))
	}
}

// Close closes every store.
func (e *Engine) Close() error { return closeStores(e.cfg.Stores) }

// Documents lists the status of every document.
func (e *Engine) Documents(ctx context.Context) ([]status.Doc, error) {
	return e.cfg.Status.List(ctx)
}
