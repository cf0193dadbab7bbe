package cypher

import (
	"path/filepath"
	"testing"
)

// FuzzRewrite: no input panics; every rewrite re-parses, round-trips, and
// carries the tenant label on every node pattern it reads or creates.
func FuzzRewrite(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.golden")
	for _, path := range files {
		for _, c := range readGolden(f, path) {
			f.Add(c.input)
		}
	}
	r := testRewriter(f)
	f.Fuzz(func(t *testing.T, query string) {
		checkRoundTrip(t, "fuzz", query)
		out, err := r.Rewrite(query, goldenTenant)
		if err != nil {
			return
		}
		checkScoped(t, "fuzz", out)
		checkRoundTrip(t, "fuzz rewrite", out)
	})
}
