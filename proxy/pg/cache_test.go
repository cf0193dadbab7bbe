package pg

import "testing"

func TestStatementCache(t *testing.T) {
	c := NewStatementCache(newTestGuard(true, false), 2)
	first := c.Check("SELECT 1")
	if c.Check("SELECT 1") != first {
		t.Fatal("a cached verdict was not reused")
	}
	c.Check("SELECT 2")
	c.Check("SELECT 1") // most recent again
	c.Check("SELECT 3") // evicts SELECT 2
	if c.Len() != 2 {
		t.Fatalf("len = %d", c.Len())
	}
	if c.Check("SELECT 1") != first {
		t.Fatal("the most recently used verdict was evicted")
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
