package graph

import (
	"reflect"
	"testing"
)

func TestEntityFromFacts(t *testing.T) {
	f := entityFacts{
		"c2": {Type: "organization", Description: "Acme builds rockets."},
		"c1": {Type: "entity", Description: "Acme is in Texas."},
		"c3": {Type: "organization", Description: "Acme builds rockets."},
	}
	e := f.entity("ent-1", "Acme")
	want := Entity{ID: "ent-1", Name: "Acme", Type: "organization",
		Description: "Acme is in Texas.\nAcme builds rockets.", SourceIDs: []string{"c1", "c2", "c3"}}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("entity = %+v\nwant %+v", e, want)
	}
}

func TestRelationFromFacts(t *testing.T) {
	f := relationFacts{
		"c1": {Description: "d1", Keywords: []string{"rocket", "build"}, Weight: 2},
		"c2": {Description: "d2", Keywords: []string{"rocket"}, Weight: 1},
	}
	r := f.relation("rel-1", "A", "B")
	want := Relation{ID: "rel-1", Source: "A", Target: "B", Description: "d1\nd2",
		Keywords: []string{"build", "rocket"}, Weight: 3, SourceIDs: []string{"c1", "c2"}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("relation = %+v\nwant %+v", r, want)
	}
}

func TestRemoveAllAndCodec(t *testing.T) {
	f := entityFacts{"c1": {Type: "x"}, "c2": {Type: "y"}}
	if removeAll(f, []string{"c9"}) {
		t.Fatal("removing an absent source reported a change")
	}
	if !removeAll(f, []string{"c1", "c9"}) || len(f) != 1 {
		t.Fatalf("after remove: %v", f)
	}
	back, err := decodeFacts[EntityFact](encodeFacts(f))
	if err != nil || !reflect.DeepEqual(entityFacts(back), f) {
		t.Fatalf("round trip: %v, %v", back, err)
	}
	if empty, err := decodeFacts[EntityFact](""); err != nil || len(empty) != 0 {
		t.Fatalf("empty: %v, %v", empty, err)
	}
}
