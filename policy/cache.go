package policy

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// lru is a bounded, concurrency-safe least-recently-used map. Every cache in
// this package is built on it so that no input an attacker controls (token
// strings, SNI slugs) can grow memory without bound. All operations are O(1).
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // front is the most recently used; elements hold *lruItem
	items map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	key K
	val V
}

// newLRU returns an lru holding at most max entries (max must be > 0).
func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, order: list.New(), items: make(map[K]*list.Element)}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruItem[K, V]).val, true
}

func (c *lru[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		el.Value.(*lruItem[K, V]).val = v
		c.order.MoveToFront(el)
		return
	}
	c.items[k] = c.order.PushFront(&lruItem[K, V]{key: k, val: v})
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*lruItem[K, V]).key)
	}
}

func (c *lru[K, V]) remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.order.Remove(el)
		delete(c.items, k)
	}
}

func (c *lru[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// verifyCache remembers successful verifications so that a token presented
// on every connection (or every Redis AUTH) costs one hash, not one signature
// check. Keys are SHA-256 digests of the token so the cache never holds
// bearer credentials in memory dumps longer than the caller does.
type verifyCache struct {
	entries *lru[[sha256.Size]byte, verified]
}

// verified is one cached verification.
type verified struct {
	identity Identity
	notAfter time.Time // exp + leeway: from this instant the token is expired
	keyGen   uint64    // key-set generation the signature was checked against
}

// cacheLookup is the outcome of verifyCache.lookup.
type cacheLookup int

const (
	cacheMiss cacheLookup = iota
	cacheHit
	cacheExpired
)

func newVerifyCache(size int) *verifyCache {
	return &verifyCache{entries: newLRU[[sha256.Size]byte, verified](size)}
}

// lookup returns the cached identity for a token digest. An entry whose
// token has expired by now, or that was verified against a key set that has
// since changed (a JWKS rotation may have revoked the key), is dropped; an
// expired one is reported as such so the caller refuses without re-parsing.
func (c *verifyCache) lookup(key [sha256.Size]byte, now time.Time, keyGen uint64) (Identity, cacheLookup) {
	e, ok := c.entries.get(key)
	if !ok {
		return Identity{}, cacheMiss
	}
	if !now.Before(e.notAfter) {
		c.entries.remove(key)
		return Identity{}, cacheExpired
	}
	if e.keyGen != keyGen {
		c.entries.remove(key)
		return Identity{}, cacheMiss
	}
	return e.identity, cacheHit
}

func (c *verifyCache) add(key [sha256.Size]byte, v verified) {
	c.entries.put(key, v)
}
