package cypher

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestRoundTrip: print(parse(q)) parses to the same AST, for every golden
// input and every rewrite.
func TestRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.golden")
	for _, path := range files {
		for _, c := range readGolden(t, path) {
			checkRoundTrip(t, c.name, c.input)
			if !strings.HasPrefix(c.want, "REFUSED") {
				checkRoundTrip(t, c.name+" (rewritten)", c.want)
			}
		}
	}
}

func checkRoundTrip(t testing.TB, name, query string) {
	t.Helper()
	st, err := Parse(query)
	if err != nil {
		return // refused inputs have nothing to round-trip
	}
	printed := st.String()
	again, err := Parse(printed)
	if err != nil {
		t.Errorf("%s: the printed form does not parse: %v\n%s", name, err, printed)
		return
	}
	// The printed form parses to the same statement; column texts differ
	// by design (they are the source text).
	if st.Prefix != again.Prefix || !reflect.DeepEqual(st.Query, again.Query) {
		t.Errorf("%s: the printed form parses to another AST\n in: %s\nout: %s", name, query, printed)
	}
}
