package vector

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/ragcore/embed"
)

func newTestPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	db, err := pgxpool.New(context.Background(), testutil.NewPostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func TestPostgresArrayStore(t *testing.T) {
	ctx := context.Background()
	db := newTestPool(t)
	for _, stmt := range Schema(Array, 256) {
		if _, err := db.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	kind, err := Detect(ctx, db)
	if err != nil || kind != Array {
		t.Fatalf("Detect = %v, %v", kind, err)
	}
	s := NewPostgres(db, kind)
	e := embed.Local{}
	texts := map[string]string{
		"c1": "Acme builds rocket engines",
		"c2": "The bakery sells sourdough bread",
		"c3": "Rocket launches from Texas",
	}
	var recs []Record
	for id, txt := range texts {
		recs = append(recs, Record{ID: id, Ref: "doc-1", Content: txt, Vector: e.Vector(txt)})
	}
	if err := s.Upsert(ctx, Chunks, recs); err != nil {
		t.Fatal(err)
	}
	// upsert again with new content: no duplicate, content replaced
	if err := s.Upsert(ctx, Chunks, []Record{{ID: "c2", Ref: "doc-2", Content: "bread", Vector: e.Vector("bread")}}); err != nil {
		t.Fatal(err)
	}
	q := e.Vector("rocket engines")
	got, err := s.Query(ctx, Chunks, q, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "c1" || got[1].ID != "c3" {
		t.Fatalf("Query = %+v", got)
	}
	if want := embed.Cosine(q, e.Vector(texts["c1"])); math.Abs(got[0].Score-want) > 1e-5 {
		t.Fatalf("score %v, want exact cosine %v", got[0].Score, want)
	}
	if got[0].Ref != "doc-1" || got[0].Content != texts["c1"] {
		t.Fatalf("record fields %+v", got[0].Record)
	}
	if all, _ := s.Query(ctx, Chunks, q, 10); len(all) != 3 {
		t.Fatalf("want 3 records, got %d", len(all))
	}
	if other, _ := s.Query(ctx, Entities, q, 10); len(other) != 0 {
		t.Fatalf("namespaces not separate: %+v", other)
	}
	if err := s.Delete(ctx, Chunks, []string{"c1", "missing"}); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.Query(ctx, Chunks, q, 10); len(got) != 2 || got[0].ID != "c3" {
		t.Fatalf("after delete: %+v", got)
	}
	// the zero vector scores 0 instead of dividing by zero
	if got, err = s.Query(ctx, Chunks, make([]float32, 256), 1); err != nil || got[0].Score != 0 {
		t.Fatalf("zero query: %+v, %v", got, err)
	}
}

func TestDetectWithoutSchema(t *testing.T) {
	if _, err := Detect(context.Background(), newTestPool(t)); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Fatalf("Detect on empty database: %v", err)
	}
}

func TestSchemaShapes(t *testing.T) {
	tests := []struct {
		kind        Kind
		want, avoid string
	}{
		{Array, "embedding float4[] NOT NULL", "vector("},
		{PGVector, "embedding vector(64) NOT NULL", "float4[]"},
	}
	for _, tt := range tests {
		all := strings.Join(Schema(tt.kind, 64), ";\n")
		if !strings.Contains(all, tt.want) || strings.Contains(all, tt.avoid) {
			t.Errorf("%s schema:\n%s", tt.kind, all)
		}
	}
	if !strings.Contains(strings.Join(Schema(PGVector, 8), "\n"), "USING hnsw (embedding vector_cosine_ops)") {
		t.Error("pgvector schema has no HNSW index")
	}
}

func TestPGVectorParam(t *testing.T) {
	p := NewPostgres(nil, PGVector)
	if got := p.param([]float32{1, -0.5, 0.25}); got != "[1,-0.5,0.25]" {
		t.Fatalf("param = %v", got)
	}
}

func TestPGVectorAvailable(t *testing.T) {
	ctx := context.Background()
	db := newTestPool(t)
	ok, err := Available(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		// Debian ships no pgvector, so here the float4[] path (tested above)
		// is the one in use: check that the detection told the truth.
		if _, err := db.Exec(ctx, "CREATE EXTENSION vector"); err == nil {
			t.Fatal("Available reported no pgvector, but CREATE EXTENSION vector succeeded")
		}
		return
	}
	for _, stmt := range Schema(PGVector, 256) {
		if _, err := db.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	s := NewPostgres(db, PGVector)
	e := embed.Local{}
	if err := s.Upsert(ctx, Entities, []Record{{ID: "e1", Content: "Acme", Vector: e.Vector("Acme")}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Query(ctx, Entities, e.Vector("Acme"), 1)
	if err != nil || len(got) != 1 || math.Abs(got[0].Score-1) > 1e-5 {
		t.Fatalf("Query = %+v, %v", got, err)
	}
}
