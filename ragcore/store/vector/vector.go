// Package vector is ragcore's vector storage role: the embeddings of chunks,
// entities and relations, searched by cosine similarity.
//
// Postgres is the implementation, one plain table per namespace keyed by
// the content-hash id. With the pgvector extension the embedding column is
// vector(dim) with an HNSW index and search uses the `<=>` cosine distance;
// without it (Debian ships no pgvector) the column is float4[] and the exact
// cosine is computed in SQL. The statements are ordinary single-tenant SQL:
// parameterised, each write in its own short transaction, no functions,
// triggers, temporary tables or session settings, so the tables can be made
// tenant-scoped underneath (tenantgate pg migrate) without touching ragcore.
package vector

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Namespace names one kind of embedded thing.
type Namespace string

// The namespaces ragcore embeds.
const (
	Chunks    Namespace = "chunk"
	Entities  Namespace = "entity"
	Relations Namespace = "relation"
)

// Namespaces lists them all.
var Namespaces = []Namespace{Chunks, Entities, Relations}

// Table returns the PostgreSQL table of ns.
func (ns Namespace) Table() string { return "ragcore_" + string(ns) + "_vectors" }

// Record is one embedded item.
type Record struct {
	ID      string
	Ref     string // what the id belongs to: the doc id of a chunk, the name of an entity, "src\x1ftgt" of a relation
	Content string // the embedded text
	Vector  []float32
}

// Match is a search hit, Score the cosine similarity (1 = same direction).
type Match struct {
	Record
	Score float64
}

// Store keeps embeddings and finds the nearest ones.
type Store interface {
	Upsert(ctx context.Context, ns Namespace, recs []Record) error
	Query(ctx context.Context, ns Namespace, vec []float32, k int) ([]Match, error)
	Delete(ctx context.Context, ns Namespace, ids []string) error
	Close()
}

// Kind says how the embedding column is stored.
type Kind string

// Storage kinds.
const (
	Array    Kind = "array"    // float4[], exact cosine in SQL
	PGVector Kind = "pgvector" // vector(dim), HNSW index, <=>
)

// Schema returns the CREATE statements of the vector tables.
func Schema(kind Kind, dim int) []string {
	var out []string
	col := "float4[]"
	if kind == PGVector {
		out = append(out, "CREATE EXTENSION IF NOT EXISTS vector")
		col = "vector(" + strconv.Itoa(dim) + ")"
	}
	for _, ns := range Namespaces {
		t := ns.Table()
		out = append(out, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
    id text NOT NULL,
    ref text NOT NULL DEFAULT '',
    content text NOT NULL,
    embedding %s NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT %s_pkey PRIMARY KEY (id)
)`, t, col, t))
		if kind == PGVector {
			out = append(out, fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s_hnsw ON %s USING hnsw (embedding vector_cosine_ops)", t, t))
		}
	}
	return out
}

// Available reports whether the pgvector extension can be used on the
// server (it is installed in the database or available to install).
func Available(ctx context.Context, db *pgxpool.Pool) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')").Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("vector: check for pgvector: %w", err)
	}
	return ok, nil
}

// Detect returns the kind of the existing tables, read from the type of the
// chunk table's embedding column; an error says when the schema is missing.
func Detect(ctx context.Context, db *pgxpool.Pool) (Kind, error) {
	var typ string
	err := db.QueryRow(ctx, `SELECT udt_name FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'embedding'`, Chunks.Table()).Scan(&typ)
	if err == pgx.ErrNoRows {
		return "", fmt.Errorf("vector: table %s not found: apply the schema (ragcore schema --apply)", Chunks.Table())
	}
	if err != nil {
		return "", fmt.Errorf("vector: inspect schema: %w", err)
	}
	if typ == "vector" {
		return PGVector, nil
	}
	return Array, nil
}

// Postgres is the Store on PostgreSQL.
type Postgres struct {
	db   *pgxpool.Pool
	kind Kind
}

// NewPostgres uses db, whose tables are of the given kind.
func NewPostgres(db *pgxpool.Pool, kind Kind) *Postgres { return &Postgres{db: db, kind: kind} }

// param converts an embedding to the value bound to the query parameter.
func (p *Postgres) param(v []float32) any {
	if p.kind != PGVector {
		return v
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, x := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat(float64(x), 'g', -1, 32))
	}
	b.WriteByte(']')
	return b.String()
}

func (p *Postgres) cast() string {
	if p.kind == PGVector {
		return "vector"
	}
	return "float4[]"
}

// Upsert implements Store: one transaction, one INSERT ... ON CONFLICT per
// record. The conflict target is the primary key constraint by name, not
// the column list, so the statement still works when the key is widened
// (tenantgate pg migrate re-creates it as (tenant_id, id) under the same
// name).
func (p *Postgres) Upsert(ctx context.Context, ns Namespace, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	q := fmt.Sprintf(`INSERT INTO %s (id, ref, content, embedding, updated_at) VALUES ($1, $2, $3, $4::%s, now())
ON CONFLICT ON CONSTRAINT %s_pkey DO UPDATE SET ref = EXCLUDED.ref, content = EXCLUDED.content, embedding = EXCLUDED.embedding, updated_at = now()`,
		ns.Table(), p.cast(), ns.Table())
	err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		for _, r := range recs {
			if _, err := tx.Exec(ctx, q, r.ID, r.Ref, r.Content, p.param(r.Vector)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("vector: upsert %d %s vectors: %w", len(recs), ns, err)
	}
	return nil
}

// Query implements Store: the k records nearest to vec, best first.
func (p *Postgres) Query(ctx context.Context, ns Namespace, vec []float32, k int) ([]Match, error) {
	var q string
	if p.kind == PGVector {
		q = fmt.Sprintf(`SELECT id, ref, content, 1 - (embedding <=> $1::vector) AS score
FROM %s ORDER BY embedding <=> $1::vector, id LIMIT $2`, ns.Table())
	} else {
		q = fmt.Sprintf(`SELECT v.id, v.ref, v.content, s.score
FROM %s AS v CROSS JOIN LATERAL (
    SELECT coalesce(sum(a::float8 * b::float8) / nullif(sqrt(sum(a::float8 * a::float8)) * sqrt(sum(b::float8 * b::float8)), 0), 0) AS score
    FROM unnest(v.embedding, $1::float4[]) AS u(a, b)
) AS s
ORDER BY s.score DESC, v.id LIMIT $2`, ns.Table())
	}
	rows, err := p.db.Query(ctx, q, p.param(vec), k)
	if err != nil {
		return nil, fmt.Errorf("vector: query %s: %w", ns, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Match, error) {
		var m Match
		err := row.Scan(&m.ID, &m.Ref, &m.Content, &m.Score)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("vector: query %s: %w", ns, err)
	}
	return out, nil
}

// Delete implements Store.
func (p *Postgres) Delete(ctx context.Context, ns Namespace, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE id = ANY($1::text[])", ns.Table()), ids)
		return err
	})
	if err != nil {
		return fmt.Errorf("vector: delete %s vectors: %w", ns, err)
	}
	return nil
}

// Close closes the pool.
func (p *Postgres) Close() { p.db.Close() }
