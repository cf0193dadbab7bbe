package pg

import (
	"container/list"
	"sync"
)

// StatementCache remembers the guard's verdict per statement text, so a hot
// statement is parsed once. Texts that differ only in their literals share
// one verdict (see appendVerdictKey), so an application that inlines its
// values into its SQL is parsed once per statement shape, not once per
// value. It is a bounded LRU shared by all sessions; texts longer than
// maxTextLen are checked every time rather than kept.
type StatementCache struct {
	guard      *Guard
	capacity   int
	maxTextLen int

	mu    sync.Mutex
	items map[string]*list.Element
	order list.List // front = most recently used; values are *cacheEntry

	// keyBufs hold the verdict keys of texts too long for check's stack
	// buffer (*[]byte), so that ORM-sized statements do not allocate one
	// per lookup.
	keyBufs sync.Pool
}

type cacheEntry struct {
	key     string
	verdict *Verdict
}

// NewStatementCache returns a cache of at most capacity verdicts of guard.
func NewStatementCache(guard *Guard, capacity int) *StatementCache {
	return &StatementCache{guard: guard, capacity: max(capacity, 1), maxTextLen: 64 << 10, items: map[string]*list.Element{}}
}

// Check returns the verdict on text, from the cache when it has one.
func (c *StatementCache) Check(text string) *Verdict { return check(c, text) }

// CheckBytes is Check on text in a message buffer: a cache hit copies
// nothing (the key of a short text is built on the stack, and the lookup
// with string(key) does not allocate).
func (c *StatementCache) CheckBytes(text []byte) *Verdict { return check(c, text) }

func check[T string | []byte](c *StatementCache, text T) *Verdict {
	if len(text) > c.maxTextLen || len(text) > 0 && text[0] == keyMasked {
		return c.guard.Check(string(text)) // not cached; no protocol text starts with NUL
	}
	var scratch [256]byte
	buf := scratch[:0]
	if len(text) >= len(scratch) {
		pooled, _ := c.keyBufs.Get().(*[]byte)
		if pooled == nil || cap(*pooled) <= len(text) {
			b := make([]byte, 0, len(text)+1) // the key is at most one byte longer
			pooled = &b
		}
		defer c.keyBufs.Put(pooled)
		buf = (*pooled)[:0]
	}
	key, masked := appendVerdictKey(buf, text)
	c.mu.Lock()
	var e *list.Element
	ok := false
	if masked {
		e, ok = c.items[string(key)]
	}
	if !ok {
		// A text the key does not mask, or one whose verdict reads its
		// literals: those are kept under the whole text (and never under
		// the masked key, since whether a verdict reads literals does not
		// depend on their values; FuzzVerdictKey checks it).
		e, ok = c.items[string(text)]
	}
	if ok {
		c.order.MoveToFront(e)
		v := e.Value.(*cacheEntry).verdict
		c.mu.Unlock()
		return v
	}
	c.mu.Unlock()
	v := c.guard.Check(string(text))
	if masked && !v.ReadsLiterals {
		c.store(string(key), v)
	} else {
		c.store(string(text), v)
	}
	return v
}

// store caches v under key.
func (c *StatementCache) store(key string, v *Verdict) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok {
		return // another session parsed it meanwhile
	}
	c.items[key] = c.order.PushFront(&cacheEntry{key: key, verdict: v})
	if c.order.Len() > c.capacity {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*cacheEntry).key)
	}
}

// Len is the number of cached verdicts.
func (c *StatementCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
