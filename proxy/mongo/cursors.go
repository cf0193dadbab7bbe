package mongo

import (
	"sync"
	"time"
)

// CursorTable records which tenant opened each upstream cursor. Cursor ids
// are global on the server, so without it a client could page through
// another tenant's results by guessing or learning an id. Ownership is per
// tenant, not per connection: drivers run getMore on whichever pooled
// connection is free.
type CursorTable struct {
	mu     sync.Mutex
	owners map[int64]cursorOwner
	max    int
	ttl    time.Duration
}

type cursorOwner struct {
	tenant string
	seen   time.Time
}

// NewCursorTable holds at most max cursors. Entries not used for ttl are
// the first to go when the table is full; a forgotten cursor can no longer
// be continued through the proxy, which fails closed.
func NewCursorTable(max int, ttl time.Duration) *CursorTable {
	return &CursorTable{owners: map[int64]cursorOwner{}, max: max, ttl: ttl}
}

// Open records that tenant owns cursor id.
func (t *CursorTable) Open(id int64, tenant string) {
	if id == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if _, known := t.owners[id]; !known && len(t.owners) >= t.max {
		t.evictLocked(now)
	}
	t.owners[id] = cursorOwner{tenant: tenant, seen: now}
}

// evictLocked drops stale entries, or an arbitrary one if none is stale.
func (t *CursorTable) evictLocked(now time.Time) {
	for id, o := range t.owners {
		if now.Sub(o.seen) > t.ttl {
			delete(t.owners, id)
		}
	}
	for id := range t.owners {
		if len(t.owners) < t.max {
			return
		}
		delete(t.owners, id)
	}
}

// Owns reports whether tenant owns cursor id, and marks it used.
func (t *CursorTable) Owns(id int64, tenant string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.owners[id]
	if !ok || o.tenant != tenant {
		return false
	}
	o.seen = time.Now()
	t.owners[id] = o
	return true
}

// Close forgets cursor id (exhausted or killed).
func (t *CursorTable) Close(id int64) {
	t.mu.Lock()
	delete(t.owners, id)
	t.mu.Unlock()
}

// Len is the number of cursors recorded.
func (t *CursorTable) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.owners)
}
