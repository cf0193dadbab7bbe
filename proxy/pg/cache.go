package pg

import (
	"container/list"
	"sync"
)

// StatementCache remembers the guard's verdict per statement text, so a hot
// statement is parsed once. It is a bounded LRU shared by all sessions;
// texts longer than maxTextLen are checked every time rather than kept.
type StatementCache struct {
	guard      *Guard
	capacity   int
	maxTextLen int

	mu    sync.Mutex
	items map[string]*list.Element
	order list.List // front = most recently used; values are *cacheEntry
}

type cacheEntry struct {
	text    string
	verdict *Verdict
}

// NewStatementCache returns a cache of at most capacity verdicts of guard.
func NewStatementCache(guard *Guard, capacity int) *StatementCache {
	return &StatementCache{guard: guard, capacity: max(capacity, 1), maxTextLen: 64 << 10, items: map[string]*list.Element{}}
}

// Check returns the verdict on text, from the cache when it has one.
func (c *StatementCache) Check(text string) *Verdict {
	c.mu.Lock()
	if e, ok := c.items[text]; ok {
		c.order.MoveToFront(e)
		v := e.Value.(*cacheEntry).verdict
		c.mu.Unlock()
		return v
	}
	c.mu.Unlock()
	return c.miss(text)
}

// CheckBytes is Check on text in a message buffer: a cache hit copies
// nothing (the lookup with string(text) does not allocate).
func (c *StatementCache) CheckBytes(text []byte) *Verdict {
	c.mu.Lock()
	if e, ok := c.items[string(text)]; ok {
		c.order.MoveToFront(e)
		v := e.Value.(*cacheEntry).verdict
		c.mu.Unlock()
		return v
	}
	c.mu.Unlock()
	return c.miss(string(text))
}

// miss parses text and caches the verdict.
func (c *StatementCache) miss(text string) *Verdict {
	v := c.guard.Check(text)
	if len(text) > c.maxTextLen {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[text]; ok {
		return v // another session parsed it meanwhile
	}
	c.items[text] = c.order.PushFront(&cacheEntry{text: text, verdict: v})
	if c.order.Len() > c.capacity {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*cacheEntry).text)
	}
	return v
}

// Len is the number of cached verdicts.
func (c *StatementCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
