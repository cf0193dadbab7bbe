package ids

import (
	"regexp"
	"testing"
)

func TestIDs(t *testing.T) {
	shape := regexp.MustCompile(`^[a-z]+-[0-9a-f]{32}$`)
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"doc deterministic", Doc("hello"), Doc("hello"), true},
		{"doc differs", Doc("hello"), Doc("hello!"), false},
		{"chunk depends on doc", Chunk("doc-1", "x"), Chunk("doc-2", "x"), false},
		{"chunk parts not concatenated", Chunk("ab", "c"), Chunk("a", "bc"), false},
		{"entity deterministic", Entity("Acme Corp"), Entity("Acme Corp"), true},
		{"relation undirected", Relation("Acme", "Bob"), Relation("Bob", "Acme"), true},
		{"relation differs", Relation("Acme", "Bob"), Relation("Acme", "Carol"), false},
		{"cache", Cache("m", "p"), Cache("m", "p"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.a == tt.b) != tt.same {
				t.Fatalf("%s vs %s: same=%v, want %v", tt.a, tt.b, tt.a == tt.b, tt.same)
			}
			for _, id := range []string{tt.a, tt.b} {
				if !shape.MatchString(id) {
					t.Fatalf("id %q has the wrong shape", id)
				}
			}
		})
	}
	if got, want := Doc("hello")[:4], "doc-"; got != want {
		t.Fatalf("prefix %q, want %q", got, want)
	}
}
