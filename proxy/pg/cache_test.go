package pg

import (
	"strconv"
	"strings"
	"testing"
)

func TestStatementCache(t *testing.T) {
	c := NewStatementCache(newTestGuard(true, false), 2)
	first := c.Check("SELECT a")
	if c.Check("SELECT a") != first {
		t.Fatal("a cached verdict was not reused")
	}
	c.Check("SELECT b")
	c.Check("SELECT a") // most recent again
	c.Check("SELECT c") // evicts SELECT b
	if c.Len() != 2 {
		t.Fatalf("len = %d", c.Len())
	}
	if c.Check("SELECT a") != first {
		t.Fatal("the most recently used verdict was evicted")
	}
	if c.CheckBytes([]byte("SELECT a")) != first {
		t.Fatal("CheckBytes did not reuse the cached verdict")
	}
	v := c.CheckBytes([]byte("SELECT d")) // a miss through CheckBytes is cached too
	if c.Check("SELECT d") != v {
		t.Fatal("a verdict from CheckBytes was not cached")
	}
	if c.Len() != 2 {
		t.Fatalf("len = %d", c.Len())
	}
}

// BenchmarkCacheHitBytes is the simple Query path: the text is looked up
// straight from the message buffer.
func BenchmarkCacheHitBytes(b *testing.B) {
	c := NewStatementCache(newTestGuard(true, false), 100)
	text := []byte("SELECT abalance FROM pgbench_accounts WHERE aid = 1")
	c.Check(string(text))
	b.ReportAllocs()
	for b.Loop() {
		c.CheckBytes(text)
	}
}

// BenchmarkCacheHitParallel is the hit path with every core asking at once
// (one mutex guards the LRU).
func BenchmarkCacheHitParallel(b *testing.B) {
	c := NewStatementCache(newTestGuard(true, false), 100)
	c.Check("SELECT * FROM items WHERE id = $1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Check("SELECT * FROM items WHERE id = $1")
		}
	})
}

// BenchmarkCacheMiss is what a statement text of a new shape costs (here a
// new alias each time, so every text is new): a full parse and walk of the
// tree. Inlined values do not miss (BenchmarkCacheHitMasked).
func BenchmarkCacheMiss(b *testing.B) {
	c := NewStatementCache(newTestGuard(true, false), 10000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		c.Check("SELECT abalance FROM pgbench_accounts a" + strconv.Itoa(i) + " WHERE aid = 1;")
	}
}

func BenchmarkCacheHit(b *testing.B) {
	c := NewStatementCache(newTestGuard(true, false), 100)
	c.Check("SELECT * FROM items WHERE id = $1")
	b.ReportAllocs()
	for b.Loop() {
		c.Check("SELECT * FROM items WHERE id = $1")
	}
}

// BenchmarkCacheHitLong is a hit on an ORM-sized statement, longer than
// the stack buffer the key is built in.
func BenchmarkCacheHitLong(b *testing.B) {
	c := NewStatementCache(newTestGuard(true, false), 100)
	text := []byte("SELECT " + strings.Repeat("t.column_name_that_is_long, ", 40) + "t.id FROM some_table t WHERE t.id = 42 AND t.owner = 'someone'")
	c.CheckBytes(text)
	b.ReportAllocs()
	for b.Loop() {
		c.CheckBytes(text)
	}
}
