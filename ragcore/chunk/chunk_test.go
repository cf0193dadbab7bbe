package chunk

import (
	"reflect"
	"strings"
	"testing"
)

func words(text string) []string {
	var out []string
	for _, t := range Tokenize(text) {
		out = append(out, text[t.Start:t.End])
	}
	return out
}

func TestTokenize(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  \n\t ", nil},
		{"Hello, world!", []string{"Hello", ",", "world", "!"}},
		{"don't re-use v3.5 now.", []string{"don't", "re-use", "v3.5", "now", "."}},
		{"# Title\n- item", []string{"#", "Title", "-", "item"}},
		{"Ünïcode wörds", []string{"Ünïcode", "wörds"}},
	}
	for _, tt := range tests {
		if got := words(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Tokenize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSplit(t *testing.T) {
	text := "a b c d e f g h i j"
	tests := []struct {
		name string
		opt  Options
		want []string
	}{
		{"one window", Options{Size: 20, Overlap: 5}, []string{text}},
		{"exact fit", Options{Size: 10, Overlap: 0}, []string{text}},
		{"no overlap", Options{Size: 4, Overlap: 0}, []string{"a b c d", "e f g h", "i j"}},
		{"overlap", Options{Size: 4, Overlap: 2}, []string{"a b c d", "c d e f", "e f g h", "g h i j"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Split(text, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			var texts []string
			for i, c := range got {
				if c.Index != i {
					t.Errorf("chunk %d has index %d", i, c.Index)
				}
				if c.Tokens != len(Tokenize(c.Text)) {
					t.Errorf("chunk %d: Tokens=%d, text has %d", i, c.Tokens, len(Tokenize(c.Text)))
				}
				texts = append(texts, c.Text)
			}
			if !reflect.DeepEqual(texts, tt.want) {
				t.Fatalf("got %q, want %q", texts, tt.want)
			}
		})
	}
}

func TestSplitKeepsFormattingAndIsDeterministic(t *testing.T) {
	text := strings.Repeat("# Heading\n\nSome *bold* text, with punctuation.\n", 30)
	a, err := Split(text, DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Split(text, DefaultOptions)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("Split is not deterministic")
	}
	for _, c := range a {
		if !strings.Contains(text, c.Text) {
			t.Fatalf("chunk %d is not a slice of the text", c.Index)
		}
	}
	if len(a) < 2 {
		t.Fatalf("expected several chunks, got %d", len(a))
	}
}

func TestSplitEmptyAndInvalid(t *testing.T) {
	if got, err := Split("   ", DefaultOptions); err != nil || len(got) != 0 {
		t.Fatalf("Split(blank) = %v, %v", got, err)
	}
	for _, o := range []Options{{0, 0}, {4, 4}, {4, -1}} {
		if _, err := Split("a", o); err == nil {
			t.Errorf("Split with %+v: no error", o)
		}
	}
}
