package extract

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestSentences(t *testing.T) {
	in := "# Acme Overview\n\nAcme Corp builds rockets. It hired Dr Jane Doe! Why?\n- Globex Inc is a rival\nVersion 3.5 shipped."
	want := []string{"Acme Overview", "Acme Corp builds rockets.", "It hired Dr Jane Doe!", "Why?", "Globex Inc is a rival", "Version 3.5 shipped."}
	if got := Sentences(in); !reflect.DeepEqual(got, want) {
		t.Fatalf("Sentences = %q\nwant %q", got, want)
	}
}

func TestPhrases(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"The Acme Corporation hired Jane Doe.", []string{"Acme Corporation", "Jane Doe"}},
		{"Acme, Globex and Initech compete.", []string{"Acme", "Globex", "Initech"}},
		{"Acme's rockets beat Acme.", []string{"Acme"}},
		{"It was quiet in Springfield.", []string{"Springfield"}},
		{"nothing capitalised here", nil},
		{"The Port of Rotterdam and Bank of America.", []string{"Port of Rotterdam", "Bank of America"}},
		{"Made of Steel, the University of the future.", []string{"Made of Steel", "University"}},
	}
	for _, tt := range tests {
		if got := Phrases(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Phrases(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLocalExtract(t *testing.T) {
	text := "Acme Corp hired Jane Doe to lead rocket research.\nJane Doe met Globex Inc in Springfield. Acme Corp and Jane Doe build rocket engines."
	res, err := Local{}.Extract(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Local{}.Extract(context.Background(), text)
	if !reflect.DeepEqual(res, again) {
		t.Fatal("Local.Extract is not deterministic")
	}
	var names []string
	for _, e := range res.Entities {
		names = append(names, e.Name)
		if e.Description == "" {
			t.Errorf("entity %s has no description", e.Name)
		}
	}
	if want := []string{"Acme Corp", "Globex Inc", "Jane Doe", "Springfield"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("entities %q, want %q", names, want)
	}
	if res.Entities[0].Type != "organization" {
		t.Errorf("Acme Corp type %q", res.Entities[0].Type)
	}
	byPair := map[string]Relation{}
	for _, r := range res.Relations {
		if r.Source >= r.Target {
			t.Errorf("relation %s-%s not ordered", r.Source, r.Target)
		}
		byPair[r.Source+"|"+r.Target] = r
	}
	r, ok := byPair["Acme Corp|Jane Doe"]
	if !ok || r.Weight != 2 {
		t.Fatalf("Acme Corp|Jane Doe = %+v, want weight 2", r)
	}
	if !strings.Contains(r.Description, "hired") || len(r.Keywords) == 0 {
		t.Errorf("relation description/keywords: %+v", r)
	}
	if _, ok := byPair["Acme Corp|Globex Inc"]; ok {
		t.Error("entities of different sentences related")
	}
	if len(byPair) != 4 { // Acme-Jane, Globex-Jane, Globex-Springfield, Jane-Springfield
		t.Errorf("got %d relations: %v", len(byPair), byPair)
	}
}

func TestLocalDropsGrammaticalCapitals(t *testing.T) {
	text := "Warehouse automation grows. Autonomous forklifts help Acme. Falcon ships soon. The Falcon drone flies."
	res, _ := Local{}.Extract(context.Background(), text)
	var names []string
	for _, e := range res.Entities {
		names = append(names, e.Name)
	}
	if want := []string{"Acme", "Falcon"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("entities %q, want %q", names, want)
	}
}

func TestKeywords(t *testing.T) {
	got := Keywords("Acme builds rockets and rockets need engines", []string{"Acme"}, 2)
	if want := []string{"rockets", "builds"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Keywords = %q, want %q", got, want)
	}
}
