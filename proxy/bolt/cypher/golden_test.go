package cypher

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected outputs of testdata/*.golden")

const goldenTenant = "acme"

// goldenCase is one entry of a golden file:
//
//	### name
//	input query, one or more lines
//	---
//	expected rewrite, or REFUSED <reason>: <message>
type goldenCase struct {
	name, input, want string
}

func readGolden(t testing.TB, path string) []goldenCase {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	for _, block := range strings.Split(string(data), "### ")[1:] {
		name, body, _ := strings.Cut(block, "\n")
		input, want, ok := strings.Cut(body, "\n---\n")
		if !ok {
			t.Fatalf("%s: case %q has no --- separator", path, name)
		}
		cases = append(cases, goldenCase{name: strings.TrimSpace(name), input: strings.TrimSpace(input), want: strings.TrimSpace(want)})
	}
	return cases
}

func writeGolden(t testing.TB, path string, cases []goldenCase) {
	t.Helper()
	var b strings.Builder
	for _, c := range cases {
		b.WriteString("### " + c.name + "\n" + c.input + "\n---\n" + c.want + "\n\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func outcome(r *Rewriter, query string) string {
	out, err := r.Rewrite(query, goldenTenant)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			return "REFUSED " + string(ce.Reason) + ": " + ce.Message
		}
		return "ERROR " + err.Error()
	}
	return out
}

func testRewriter(t testing.TB) *Rewriter {
	t.Helper()
	r, err := NewRewriter("Tenant_{tenant}", DefaultProcedures)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestGolden checks every case of testdata/*.golden: the rewrite of the
// input, or the refusal. Run with -update to regenerate, then review the
// diff: the expected outputs are the isolation contract.
func TestGolden(t *testing.T) {
	r := testRewriter(t)
	files, err := filepath.Glob("testdata/*.golden")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	total := 0
	for _, path := range files {
		cases := readGolden(t, path)
		total += len(cases)
		seen := map[string]bool{}
		for i, c := range cases {
			if seen[c.name] {
				t.Errorf("%s: duplicate case name %q", path, c.name)
			}
			seen[c.name] = true
			got := outcome(r, c.input)
			if *update {
				cases[i].want = got
				continue
			}
			if got != c.want {
				t.Errorf("%s: %s\ninput: %s\n got: %s\nwant: %s", filepath.Base(path), c.name, c.input, got, c.want)
			}
			if !strings.HasPrefix(got, "REFUSED") {
				checkScoped(t, c.name, got)
			}
		}
		if *update {
			writeGolden(t, path, cases)
		}
	}
	if total < 150 {
		t.Errorf("the golden corpus has %d cases; keep at least 150", total)
	}
}

// checkScoped asserts the invariant of every rewrite: it parses, and every
// node pattern carries the tenant label, except bare references to bound
// variables in CREATE and MERGE.
func checkScoped(t testing.TB, name, rewritten string) {
	t.Helper()
	st, err := Parse(rewritten)
	if err != nil {
		t.Errorf("%s: the rewrite does not parse: %v\n%s", name, err, rewritten)
		return
	}
	label := "Tenant_" + goldenTenant
	found := nodePatterns(st)
	if all := allNodePatterns(st); all != len(found) {
		t.Errorf("%s: %d node patterns, of which the walk found %d, in %s", name, all, len(found), rewritten)
	}
	for _, n := range found {
		if n.bareInCreate {
			continue
		}
		if !requiresLabel(n.node.Labels, label) {
			t.Errorf("%s: node pattern without the tenant label in %s", name, rewritten)
		}
	}
}
