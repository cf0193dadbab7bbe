// Package kv is ragcore's key-value storage role: document texts, chunk
// texts and the model response cache, as string values under
// (namespace, id) keys.
//
// Redis is the implementation. It is written for a single, ordinary Redis
// database and uses only plain commands: GET, MGET, SET, DEL and SCAN, with
// every write wrapped in MULTI/EXEC. It never uses KEYS, scripts, SELECT or
// FLUSH*, so it runs unchanged behind a proxy that scopes keys per tenant.
package kv

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Namespaces of values.
const (
	Docs   = "doc"
	Chunks = "chunk"
	Cache  = "cache"
)

// Store keeps string values by namespace and id.
type Store interface {
	// Put writes all values of ns atomically.
	Put(ctx context.Context, ns string, values map[string]string) error
	// Get returns the values of the ids of ns that exist.
	Get(ctx context.Context, ns string, ids ...string) (map[string]string, error)
	// Delete removes the ids of ns atomically; missing ids are ignored.
	Delete(ctx context.Context, ns string, ids ...string) error
	// IDs lists every id of ns, sorted.
	IDs(ctx context.Context, ns string) ([]string, error)
	Close() error
}

// Redis is the Store on a Redis server.
type Redis struct {
	client *redis.Client
	prefix string
}

// DefaultPrefix starts every key unless another prefix is given.
const DefaultPrefix = "ragcore:"

// NewRedis wraps a client. Keys are prefix+ns+":"+id; prefix lets several
// independent stores share one database (tests use it). The prefix must not
// contain glob characters.
func NewRedis(client *redis.Client, prefix string) (*Redis, error) {
	if strings.ContainsAny(prefix, `*?[]\`) {
		return nil, fmt.Errorf("kv: prefix %q contains glob characters", prefix)
	}
	return &Redis{client: client, prefix: prefix}, nil
}

func (r *Redis) key(ns, id string) string { return r.prefix + ns + ":" + id }

// Put implements Store with SETs in one MULTI/EXEC.
func (r *Redis) Put(ctx context.Context, ns string, values map[string]string) error {
	if len(values) == 0 {
		return nil
	}
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for id, v := range values {
			p.Set(ctx, r.key(ns, id), v, 0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kv: put %d %s values: %w", len(values), ns, err)
	}
	return nil
}

// Get implements Store with one MGET.
func (r *Redis) Get(ctx context.Context, ns string, ids ...string) (map[string]string, error) {
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = r.key(ns, id)
	}
	vals, err := r.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("kv: get %s values: %w", ns, err)
	}
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[ids[i]] = s
		}
	}
	return out, nil
}

// Delete implements Store with one DEL in a MULTI/EXEC.
func (r *Redis) Delete(ctx context.Context, ns string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = r.key(ns, id)
	}
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keys...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("kv: delete %s values: %w", ns, err)
	}
	return nil
}

// IDs implements Store with SCAN MATCH prefix+ns+":*".
func (r *Redis) IDs(ctx context.Context, ns string) ([]string, error) {
	start := r.key(ns, "")
	var ids []string
	iter := r.client.Scan(ctx, 0, start+"*", 500).Iterator()
	seen := map[string]bool{} // SCAN may return a key twice
	for iter.Next(ctx) {
		id := strings.TrimPrefix(iter.Val(), start)
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("kv: scan %s: %w", ns, err)
	}
	sort.Strings(ids)
	return ids, nil
}

// Close closes the client.
func (r *Redis) Close() error {
	if err := r.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return err
	}
	return nil
}
