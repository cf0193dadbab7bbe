package pg

import (
	"bytes"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// verdictKeyCases: texts and their key ("" = not masked, cached whole). In
// the key, # stands for maskInteger, ~ for maskNumeric and ? for maskString.
var verdictKeyCases = []struct{ text, key string }{
	{"SELECT abalance FROM pgbench_accounts WHERE aid = 4711;", "SELECT abalance FROM pgbench_accounts WHERE aid = #;"},
	{"SELECT 1, 1.5, .5, 1e5, 1E-5, 2.5e+3", "SELECT #, ~, ~, ~, ~, ~"},
	{"SELECT 2147483647, 2147483648, 0002147483647", "SELECT #, ~, #"},
	{"SELECT -1, 1-1, a.b, t1.c2, x$1", "SELECT -#, #-#, a.b, t1.c2, x$1"},
	{"SELECT $1, $23::int, '1', '1''2', \"col 1\", \"a\"\"1\"", "SELECT $1, $23::int, ?, ?, \"col 1\", \"a\"\"1\""},
	{"SELECT * FROM users WHERE email = 'a@b.c' AND n > 2", "SELECT * FROM users WHERE email = ? AND n > #"},
	{"SELECT '', 'it''s', '--', '/*', '$$'", "SELECT ?, ?, ?, ?, ?"},
	{"SELECT 'a' 'b', 'c'\t'd'", "SELECT ? ?, ?\t?"},
	{"UPDATE t SET v = v + 1 WHERE id IN (1, 2, 3)", "UPDATE t SET v = v + # WHERE id IN (#, #, #)"},
	{"SELECT\t1\n,\r2\f", "SELECT\t#\n,\r#\f"},
	{"SELECT 'a'\n'b', 3", ""}, // one literal, continued on the next line
	{"SELECT 'a' \r\n 'b'", ""},
	{"", ""},
	// Not masked: PostgreSQL versions differ, or the text needs more than
	// the key's tokenizer reads.
	{"SELECT 0x1F", ""},
	{"SELECT 1_000", ""},
	{"SELECT 1e", ""},
	{"SELECT 1.e5", ""},
	{"SELECT 1..2", ""},
	{"SELECT a ..5", ""},
	{"SELECT 1.5.5", ""},
	{"SELECT 123abc", ""},
	{"SELECT 1 -- 2", ""},
	{"SELECT /* 1 */ 2", ""},
	{"SELECT E'\\x31'", ""},
	{"SELECT e'1'", ""},
	{"SELECT B'101', X'1F', N'1'", ""},
	{"SELECT U&'\\0031'", ""},
	{"SELECT U&\"a\"", ""},
	{"SELECT $$1$$", ""},
	{"SELECT $a$1$a$", ""},
	{"SELECT $1a", ""},
	{"SELECT '1\\'", ""},
	{"SELECT 'unterminated", ""},
	{"SELECT \"unterminated", ""},
	{"SELECT 'é', 1", ""},
	{"SELECT 1\v", ""},
}

func TestVerdictKey(t *testing.T) {
	for _, tc := range verdictKeyCases {
		key, masked := appendVerdictKey(nil, tc.text)
		if tc.key == "" && tc.text != "" {
			if masked {
				t.Errorf("%q masked as %q; want it cached whole", tc.text, key)
			}
			continue
		}
		if !masked {
			t.Errorf("%q not masked; want %q", tc.text, tc.key)
			continue
		}
		want := "\x00" + strings.NewReplacer("#", "\xff", "~", "\xfe", "?", "\xfd").Replace(tc.key)
		if string(key) != want {
			t.Errorf("%q: key %q, want %q", tc.text, key, want)
		}
	}
}

// TestCacheSharesVerdictAcrossLiterals: texts that differ only in their
// literals share one cached verdict; texts that differ in anything else do
// not, refusals included; and a verdict that reads a literal is never
// shared.
func TestCacheSharesVerdictAcrossLiterals(t *testing.T) {
	c := NewStatementCache(newTestGuard(true, false), 100)
	v := c.Check("SELECT * FROM t WHERE id = 1")
	if c.Check("SELECT * FROM t WHERE id = 2") != v || c.CheckBytes([]byte("SELECT * FROM t WHERE id = 99999")) != v {
		t.Fatal("texts differing only in a number did not share a verdict")
	}
	if c.Check("SELECT * FROM t WHERE id = 1.5") == v {
		t.Fatal("an integer and a decimal literal shared a verdict")
	}
	s := c.Check("SELECT * FROM t WHERE id = '1'")
	if s == v {
		t.Fatal("a number and a string shared a verdict")
	}
	if c.Check("SELECT * FROM t WHERE id = 'x''y'") != s {
		t.Fatal("texts differing only in a string did not share a verdict")
	}
	refused := c.Check("SELECT set_config('app.tenant_id', 'b', false), 1")
	if refused.Refusal == nil || refused.Refusal.Rule != RuleSetConfig {
		t.Fatalf("set_config: %+v", refused)
	}
	if w := c.Check("SELECT set_config('app.tenant_id', 'c', false), 2"); w != refused {
		t.Fatalf("the same refused shape got another verdict: %+v", w)
	}
	if w := c.Check("SELECT set_config('app.tenant_id', 'b', false), '2'"); w.Refusal == nil {
		t.Fatal("set_config allowed")
	}
	// SET ROLE 'none' is allowed, SET ROLE 'x' is not: in either order.
	for _, order := range [][2]string{{"SET ROLE 'none'", "SET ROLE 'postgres'"}, {"SET SESSION AUTHORIZATION 'postgres'", "SET SESSION AUTHORIZATION 'none'"}} {
		first, second := c.Check(order[0]), c.Check(order[1])
		if (first.Refusal == nil) == (second.Refusal == nil) {
			t.Fatalf("%q and %q got one verdict: %+v, %+v", order[0], order[1], first, second)
		}
		if again := c.Check(order[1]); again != second {
			t.Fatalf("%q was not cached under its own text", order[1])
		}
	}
}

// FuzzVerdictKey holds the masking to PostgreSQL's own scanner: whenever a
// text is masked, its key is exactly the text with each ICONST, FCONST and
// SCONST token of pg_query's scanner replaced by its class byte; and the
// guard's verdict does not change when every literal is replaced by another
// of the same class, unless the verdict says it reads literals. If the
// guard ever judges a literal's value without saying so, or the masking
// misreads a literal, this fails. (The grammar itself rejects a few
// values, float(60) for one; such a text is unparsable to the server too,
// so a verdict that differs only by one side being unparsable is fine.)
func FuzzVerdictKey(f *testing.F) {
	for _, tc := range verdictKeyCases {
		f.Add(tc.text)
	}
	for _, tc := range guardCases {
		f.Add(tc.sql)
	}
	for _, s := range []string{
		"FETCH 5 FROM c", "SELECT pg_advisory_lock(1)", "SELECT 1::numeric(10, 2)", "SELECT 1'a'", "SELECT \"a\"1",
		"SELECT a.1", "SELECT 1.a", "SELECT 1+-2", "SELECT 1e5e5", "SELECT 1.5e", "SELECT '''1'''", "SELECT x:=1",
		"DECLARE c CURSOR WITH HOLD FOR SELECT 1", "SET statement_timeout = 5", "SELECT 99999999999999999999",
		"SET ROLE 'none'", "SET ROLE 'x'", "SET SESSION AUTHORIZATION 'x'", "SET ROLE 'none'; SELECT 1", "COPY t FROM 'f'",
		"LOAD 'x'", "SELECT 'a' 'b'", "SELECT 'a'\n 'b'", "SELECT pg_notify('c', 'x')", "SET search_path = 'x'",
	} {
		f.Add(s)
	}
	g := newTestGuard(true, false)
	f.Fuzz(func(t *testing.T, text string) {
		key, masked := appendVerdictKey(nil, text)
		if !masked {
			return
		}
		scan, err := pg_query.Scan(text)
		if err != nil {
			// A text the scanner rejects (an operator of 64 characters, say)
			// fails on the server too, whatever verdict its key finds.
			return
		}
		want := []byte{keyMasked}
		var other strings.Builder // text with every number replaced by another of its class
		pos := 0
		for _, tok := range scan.GetTokens() {
			var mask byte
			var replacement string
			switch tok.GetToken() {
			case pg_query.Token_ICONST:
				mask, replacement = maskInteger, "2147483647"
			case pg_query.Token_FCONST:
				mask, replacement = maskNumeric, "31.4e-1"
				if text[tok.GetStart()] == '.' {
					replacement = ".25" // keeps "a.1" from becoming "a31.4e-1"
				}
			case pg_query.Token_SCONST:
				mask, replacement = maskString, "'it''s 7'"
			default:
				continue
			}
			start, end := int(tok.GetStart()), int(tok.GetEnd())
			want = append(append(want, text[pos:start]...), mask)
			other.WriteString(text[pos:start])
			other.WriteString(replacement)
			pos = end
		}
		want = append(want, text[pos:]...)
		other.WriteString(text[pos:])
		if !bytes.Equal(key, want) {
			t.Fatalf("%q: key %q, but PostgreSQL's scanner gives %q", text, key, want)
		}
		otherKey, ok := appendVerdictKey(nil, other.String())
		if !ok || !bytes.Equal(otherKey, key) {
			t.Fatalf("%q and %q differ only in numbers but have keys %q and %q", text, other.String(), key, otherKey)
		}
		a, b := g.Check(text), g.Check(other.String())
		if a.ReadsLiterals != b.ReadsLiterals {
			t.Fatalf("whether the verdict reads literals depends on their values:\n%q: %+v\n%q: %+v", text, a, other.String(), b)
		}
		if a.ReadsLiterals {
			return // cached under the whole text, never shared
		}
		if !sameVerdict(a, b) && !unparsable(a) && !unparsable(b) {
			t.Fatalf("verdict depends on a number's value:\n%q: %+v\n%q: %+v", text, a, other.String(), b)
		}
	})
}

func unparsable(v *Verdict) bool { return v.Refusal != nil && v.Refusal.Rule == RuleUnparsable }

func sameVerdict(a, b *Verdict) bool {
	if (a.Refusal == nil) != (b.Refusal == nil) || a.Effects != b.Effects || a.Deallocate != b.Deallocate {
		return false
	}
	if a.Refusal != nil && a.Refusal.Rule != b.Refusal.Rule {
		return false
	}
	if (a.IfNotExists == nil) != (b.IfNotExists == nil) {
		return false
	}
	return a.IfNotExists == nil || *a.IfNotExists == *b.IfNotExists
}

// BenchmarkCacheHitMasked is a text with inlined values whose shape is
// cached: what pgbench -M simple costs per statement once warm.
func BenchmarkCacheHitMasked(b *testing.B) {
	c := NewStatementCache(newTestGuard(true, false), 100)
	c.Check("SELECT abalance FROM pgbench_accounts WHERE aid = 1;")
	text := []byte("SELECT abalance FROM pgbench_accounts WHERE aid = 4242;")
	b.ReportAllocs()
	for b.Loop() {
		c.CheckBytes(text)
	}
}
