// Package embed turns texts into vectors for similarity search.
//
// Embedder is what the pipeline needs; Local is the deterministic default
// that needs no model and no network: every lower-cased word, padded with
// boundary marks, is cut into character n-grams, each n-gram is hashed
// (FNV-1a) to one of Dims buckets with a hash-chosen sign, and the sum is
// L2-normalised. Texts that share words and word pieces get close vectors,
// which is enough for retrieval over small corpora and for tests. The
// OpenAI-compatible client in package llm is the option for real models.
package embed

import (
	"context"
	"hash/fnv"
	"math"
	"strings"
	"unicode"
)

// Embedder maps texts to vectors of Dim() dimensions, one per text, in order.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	Dim() int
}

// Local is the hashed character n-gram embedder.
type Local struct {
	Dims       int // vector size; DefaultDims when 0
	MinN, MaxN int // n-gram sizes; 3 and 5 when 0
}

// DefaultDims is Local's vector size unless configured.
const DefaultDims = 256

// Dim implements Embedder.
func (l Local) Dim() int {
	if l.Dims > 0 {
		return l.Dims
	}
	return DefaultDims
}

// Embed implements Embedder. It never fails.
func (l Local) Embed(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = l.Vector(t)
	}
	return out, nil
}

// Vector embeds one text. A text without words gives the zero vector.
func (l Local) Vector(text string) []float32 {
	minN, maxN := l.MinN, l.MaxN
	if minN <= 0 {
		minN = 3
	}
	if maxN < minN {
		maxN = max(minN, 5)
	}
	dims := l.Dim()
	acc := make([]float64, dims)
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	for _, w := range words {
		runes := []rune("<" + w + ">")
		for n := minN; n <= maxN; n++ {
			for i := 0; i+n <= len(runes); i++ {
				add(acc, string(runes[i:i+n]))
			}
		}
		if len(runes) < minN { // very short words count as a whole
			add(acc, string(runes))
		}
	}
	var norm float64
	for _, v := range acc {
		norm += v * v
	}
	vec := make([]float32, dims)
	if norm == 0 {
		return vec
	}
	norm = math.Sqrt(norm)
	for i, v := range acc {
		vec[i] = float32(v / norm)
	}
	return vec
}

func add(acc []float64, gram string) {
	h := fnv.New64a()
	h.Write([]byte(gram))
	sum := h.Sum64()
	sign := 1.0
	if sum>>63 == 1 {
		sign = -1
	}
	acc[sum%uint64(len(acc))] += sign
}

// Cosine returns the cosine similarity of a and b (0 when either is zero).
func Cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range min(len(a), len(b)) {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}
