package embed

import (
	"context"
	"math"
	"reflect"
	"testing"
)

func TestLocalDeterministicAndNormalised(t *testing.T) {
	l := Local{}
	texts := []string{"Acme Corporation builds rockets.", "", "a", "Ünïcode wörds 42"}
	a, err := l.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := l.Embed(context.Background(), texts)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("Local.Embed is not deterministic")
	}
	for i, v := range a {
		if len(v) != DefaultDims {
			t.Fatalf("text %d: %d dims, want %d", i, len(v), DefaultDims)
		}
		var n float64
		for _, x := range v {
			n += float64(x) * float64(x)
		}
		want := 1.0
		if texts[i] == "" {
			want = 0
		}
		if math.Abs(n-want) > 1e-5 {
			t.Errorf("text %q: squared norm %v, want %v", texts[i], n, want)
		}
	}
}

func TestLocalSimilarity(t *testing.T) {
	l := Local{Dims: 128}
	if l.Dim() != 128 || len(l.Vector("x")) != 128 {
		t.Fatal("Dims not honoured")
	}
	q := l.Vector("rocket engines")
	near := l.Vector("Acme builds rocket engines in Texas.")
	far := l.Vector("The bakery sells sourdough bread.")
	if Cosine(q, near) <= Cosine(q, far) {
		t.Fatalf("cos(near)=%v <= cos(far)=%v", Cosine(q, near), Cosine(q, far))
	}
	if c := Cosine(q, q); math.Abs(c-1) > 1e-6 {
		t.Fatalf("self cosine %v", c)
	}
	if c := Cosine(q, l.Vector("")); c != 0 {
		t.Fatalf("cosine with zero vector %v", c)
	}
}
