package mongo

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Golden tests of the command rewriters: testdata/<mode>.txt lists cases,
// one per line as "name<TAB>command as extended JSON"; <mode>.golden holds
// what the rewriter made of each, for tenant "acme". Cursor 42 is owned by
// acme and cursor 43 by globex. Regenerate with go test -run Golden -update.
func TestRewriteGolden(t *testing.T) {
	for _, mode := range []string{ModeDatabase, ModeField} {
		t.Run(mode, func(t *testing.T) {
			r := newTestRewriter(t, mode)
			cases := readCases(t, filepath.Join("testdata", mode+".txt"))
			var out bytes.Buffer
			for _, c := range cases {
				fmt.Fprintf(&out, "## %s\n%s\n", c.name, rewriteString(r, c.cmd))
			}
			golden := filepath.Join("testdata", mode+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := firstDiff(string(want), out.String()); diff != "" {
				t.Fatalf("%s differs from the rewriter's output (run with -update if intended):\n%s", golden, diff)
			}
		})
	}
}

func newTestRewriter(t testing.TB, mode string) *CommandRewriter {
	var sc scoper = &fieldScoper{field: DefaultTenantField}
	if mode == ModeDatabase {
		namer, err := NewDatabaseNamer(DefaultDatabaseTemplate)
		if err != nil {
			t.Fatal(err)
		}
		sc = &databaseScoper{names: namer}
	}
	cursors := NewCursorTable(100, time.Hour)
	cursors.Open(42, "acme")
	cursors.Open(43, "globex")
	return &CommandRewriter{scoper: sc, cursors: cursors}
}

type rewriteCase struct {
	name string
	cmd  bsoncore.Document
}

func readCases(t *testing.T, path string) []rewriteCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []rewriteCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, js, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("%s: no tab in %q", path, line)
		}
		var d bson.D
		if err := bson.UnmarshalExtJSON([]byte(js), false, &d); err != nil {
			t.Fatalf("%s: %s: %v", path, name, err)
		}
		raw, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, rewriteCase{name: name, cmd: raw})
	}
	return cases
}

// rewriteString runs one command through r as acme and prints the result.
func rewriteString(r *CommandRewriter, body bsoncore.Document) string {
	db, _ := body.Lookup("$db").StringValueOK()
	out, _, err := r.Rewrite(&command{Name: firstKey(body), DB: db, Msg: &OpMsg{Body: body}}, "acme")
	if err != nil {
		ce := err.(*CommandError)
		return fmt.Sprintf("REFUSED %s (%d): %s", codeNames[ce.Code], ce.Code, ce.Msg)
	}
	return bson.Raw(out.Body).String()
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(wl), len(gl)) {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n want: %s\n  got: %s", i+1, w, g)
		}
	}
	return ""
}

// TestFieldModeDocumentSequences: inserts and updates given as OP_MSG
// document sequences are scoped like their body forms.
func TestFieldModeDocumentSequences(t *testing.T) {
	r := newTestRewriter(t, ModeField)
	mk := func(js string) bsoncore.Document {
		var d bson.D
		if err := bson.UnmarshalExtJSON([]byte(js), false, &d); err != nil {
			t.Fatal(err)
		}
		b, _ := bson.Marshal(d)
		return b
	}
	for _, c := range []struct {
		body, seqID string
		docs        []string
		want        []string
		refused     bool
	}{
		{`{"insert":"c","$db":"app"}`, "documents", []string{`{"_id":1}`, `{"_id":2,"tenant_id":"acme"}`},
			[]string{`{"_id": {"$numberInt":"1"},"tenant_id": "acme"}`, `{"_id": {"$numberInt":"2"},"tenant_id": "acme"}`}, false},
		{`{"insert":"c","$db":"app"}`, "documents", []string{`{"_id":1}`, `{"_id":2,"tenant_id":"globex"}`}, nil, true},
		{`{"delete":"c","$db":"app"}`, "deletes", []string{`{"q":{"a":1},"limit":0}`},
			[]string{`{"q": {"$and": [{"tenant_id": "acme"},{"a": {"$numberInt":"1"}}]},"limit": {"$numberInt":"0"}}`}, false},
		{`{"update":"c","$db":"app"}`, "updates", []string{`{"q":{},"u":{"$set":{"tenant_id.x":1}}}`}, nil, true},
		{`{"insert":"c","$db":"app"}`, "deletes", []string{`{"q":{}}`}, nil, true},
		{`{"insert":"c","documents":[],"$db":"app"}`, "documents", []string{`{"_id":1}`}, nil, true},
		{`{"aggregate":"c","cursor":{},"$db":"app"}`, "pipeline", []string{`{"$out":"x"}`}, nil, true},
		{`{"find":"c","$db":"app"}`, "filter", []string{`{}`}, nil, true},
	} {
		docs := make([]bsoncore.Document, len(c.docs))
		for i, d := range c.docs {
			docs[i] = mk(d)
		}
		body := mk(c.body)
		out, _, err := r.Rewrite(&command{Name: firstKey(body), DB: "app", Msg: &OpMsg{Body: body, Sequences: []Sequence{{Identifier: c.seqID, Docs: docs}}}}, "acme")
		if c.refused {
			if err == nil {
				t.Errorf("%s %v: not refused", c.body, c.docs)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		got, _ := out.Sequence(c.seqID)
		for i, d := range got {
			if s := bson.Raw(d).String(); s != c.want[i] {
				t.Errorf("%s doc %d = %s, want %s", c.body, i, s, c.want[i])
			}
		}
	}
}
