package llm

import (
	"context"
	"reflect"
	"testing"
)

func TestExtractor(t *testing.T) {
	reply := `("entity"<|>"Acme Corp"<|>"Organization"<|>"Acme builds rockets.")##
("entity"<|>Jane Doe<|>person<|>Jane leads Acme.)##
("relationship"<|>"Jane Doe"<|>"Acme Corp"<|>"Jane leads Acme."<|>"leadership, rockets"<|>8)##
("relationship"<|>"Acme Corp"<|>"Nobody"<|>"dangling"<|>"x"<|>1)##
garbage##
<|COMPLETE|>`
	_, c := newFake(t, func(string) string { return reply })
	got, err := Extractor{Client: c}.Extract(context.Background(), "some text")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Entities) != 2 || got.Entities[0].Name != "Acme Corp" || got.Entities[0].Type != "organization" {
		t.Fatalf("entities %+v", got.Entities)
	}
	if len(got.Relations) != 1 {
		t.Fatalf("relations %+v", got.Relations)
	}
	r := got.Relations[0]
	if r.Source != "Acme Corp" || r.Target != "Jane Doe" || r.Weight != 8 || !reflect.DeepEqual(r.Keywords, []string{"leadership", "rockets"}) {
		t.Fatalf("relation %+v", r)
	}
}
