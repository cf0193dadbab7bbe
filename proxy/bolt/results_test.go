package bolt

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/tenantgate/tenantgate/proxy/bolt/packstream"
)

func TestHideLabel(t *testing.T) {
	v := version{5, 8}
	tenantNode := func(id int64) *packstream.Structure {
		return node(v, id, []string{"Doc", "Tenant_acme"}, map[string]any{"t": "Tenant_acme in a string stays"})
	}
	rel := &packstream.Structure{Tag: packstream.TagUnboundRelationship, Fields: []any{int64(9), "R", &packstream.Map{}, "r9"}}
	path := &packstream.Structure{Tag: packstream.TagPath, Fields: []any{[]any{tenantNode(1), tenantNode(2)}, []any{rel}, []any{int64(1), int64(1)}}}
	record := encode(msgRecord, []any{tenantNode(1), path, []any{tenantNode(3)}, &packstream.Map{Keys: []string{"n"}, Values: []any{tenantNode(4)}}})

	out, err := hideLabel(record, "Tenant_acme")
	if err != nil {
		t.Fatal(err)
	}
	st, err := packstream.DecodeStructure(out, packstream.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*packstream.Structure
	var collect func(any)
	collect = func(x any) {
		switch x := x.(type) {
		case []any:
			for _, y := range x {
				collect(y)
			}
		case *packstream.Map:
			collect(x.Values)
		case *packstream.Structure:
			if x.Tag == packstream.TagNode {
				nodes = append(nodes, x)
				return
			}
			collect(x.Fields)
		}
	}
	collect(st.Fields)
	if len(nodes) != 5 {
		t.Fatalf("found %d nodes", len(nodes))
	}
	for _, n := range nodes {
		if !reflect.DeepEqual(n.Fields[1], []any{"Doc"}) {
			t.Errorf("labels %v", n.Fields[1])
		}
		if s, _ := stringEntry(n.Fields[2].(*packstream.Map), "t"); s != "Tenant_acme in a string stays" {
			t.Errorf("a property was changed: %q", s)
		}
	}

	plain := encode(msgRecord, []any{int64(1), "text"})
	if got, _ := hideLabel(plain, "Tenant_acme"); &got[0] != &plain[0] {
		t.Error("a record without the label was re-encoded")
	}
}

func TestScrubLabel(t *testing.T) {
	msg := failure(version{5, 8}, codeSyntax, "Label Tenant_acme is unknown near (n:Tenant_acme)")
	out, err := scrubLabel(msg, "Tenant_acme")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("Tenant_acme")) {
		t.Errorf("the label is still in %q", out)
	}
	st, _ := packstream.DecodeStructure(out, packstream.DefaultLimits)
	if m, _ := stringEntry(st.Fields[0].(*packstream.Map), "message"); m != "Label <tenant> is unknown near (n:<tenant>)" {
		t.Errorf("message %q", m)
	}
}

func TestRewriteServers(t *testing.T) {
	table := kv("servers", []any{
		kv("addresses", []any{"a:1", "b:1"}, "role", "WRITE"),
		kv("addresses", []any{"c:1"}, "role", "READ"),
		kv("addresses", []any{"d:1"}, "role", "READ"),
	})
	got := rewriteServers(table, "proxy:7687")
	want := []any{
		kv("addresses", []any{"proxy:7687"}, "role", "WRITE"),
		kv("addresses", []any{"proxy:7687"}, "role", "READ"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %s", dump(got))
	}
	if got := rewriteServers(kv(), "proxy:7687"); len(got) != 3 {
		t.Errorf("an empty table gives %d roles, want ROUTE, READ and WRITE", len(got))
	}
}
