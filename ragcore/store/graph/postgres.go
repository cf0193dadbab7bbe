package graph

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantgate/tenantgate/ragcore/ids"
)

// Schema returns the CREATE statements of the graph tables. Primary key
// constraints are named (<table>_pkey, PostgreSQL's default) because the
// upserts name them: see vector.Postgres.Upsert.
func Schema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS ragcore_entities (
    id text NOT NULL,
    name text NOT NULL,
    entity_type text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    source_ids text[] NOT NULL DEFAULT '{}',
    facts jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ragcore_entities_pkey PRIMARY KEY (id)
)`,
		`CREATE INDEX IF NOT EXISTS ragcore_entities_name ON ragcore_entities (name)`,
		`CREATE TABLE IF NOT EXISTS ragcore_relations (
    id text NOT NULL,
    src text NOT NULL,
    tgt text NOT NULL,
    description text NOT NULL DEFAULT '',
    keywords text[] NOT NULL DEFAULT '{}',
    weight float8 NOT NULL DEFAULT 0,
    source_ids text[] NOT NULL DEFAULT '{}',
    facts jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ragcore_relations_pkey PRIMARY KEY (id)
)`,
		`CREATE INDEX IF NOT EXISTS ragcore_relations_src ON ragcore_relations (src)`,
		`CREATE INDEX IF NOT EXISTS ragcore_relations_tgt ON ragcore_relations (tgt)`,
	}
}

// Postgres is the Store on PostgreSQL tables.
type Postgres struct{ db *pgxpool.Pool }

// NewPostgres uses db, where Schema has been applied.
func NewPostgres(db *pgxpool.Pool) *Postgres { return &Postgres{db: db} }

const (
	pgUpsertEntity = `INSERT INTO ragcore_entities (id, name, entity_type, description, source_ids, facts, updated_at)
VALUES ($1, $2, $3, $4, $5::text[], $6::jsonb, now())
ON CONFLICT ON CONSTRAINT ragcore_entities_pkey DO UPDATE SET entity_type = EXCLUDED.entity_type, description = EXCLUDED.description,
    source_ids = EXCLUDED.source_ids, facts = EXCLUDED.facts, updated_at = now()`
	pgUpsertRelation = `INSERT INTO ragcore_relations (id, src, tgt, description, keywords, weight, source_ids, facts, updated_at)
VALUES ($1, $2, $3, $4, $5::text[], $6, $7::text[], $8::jsonb, now())
ON CONFLICT ON CONSTRAINT ragcore_relations_pkey DO UPDATE SET description = EXCLUDED.description, keywords = EXCLUDED.keywords,
    weight = EXCLUDED.weight, source_ids = EXCLUDED.source_ids, facts = EXCLUDED.facts, updated_at = now()`
	relationColumns = `id, src, tgt, description, keywords, weight, source_ids`
)

func putEntity(ctx context.Context, tx pgx.Tx, e Entity, facts entityFacts) error {
	_, err := tx.Exec(ctx, pgUpsertEntity, e.ID, e.Name, e.Type, e.Description, e.SourceIDs, encodeFacts(facts))
	return err
}

func putRelation(ctx context.Context, tx pgx.Tx, r Relation, facts relationFacts) error {
	_, err := tx.Exec(ctx, pgUpsertRelation, r.ID, r.Source, r.Target, r.Description, r.Keywords, r.Weight, r.SourceIDs, encodeFacts(facts))
	return err
}

// UpsertEntity implements Store: read the facts under a row lock, merge, write.
func (p *Postgres) UpsertEntity(ctx context.Context, name, source string, f EntityFact) (Entity, error) {
	id := ids.Entity(name)
	var e Entity
	err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		facts, err := lockFacts[EntityFact](ctx, tx, "SELECT facts::text FROM ragcore_entities WHERE id = $1 FOR UPDATE", id)
		if err != nil {
			return err
		}
		facts[source] = f
		e = entityFacts(facts).entity(id, name)
		return putEntity(ctx, tx, e, facts)
	})
	if err != nil {
		return Entity{}, fmt.Errorf("graph: upsert entity %q: %w", name, err)
	}
	return e, nil
}

// UpsertRelation implements Store.
func (p *Postgres) UpsertRelation(ctx context.Context, a, b, source string, f RelationFact) (Relation, error) {
	a, b = ordered(a, b)
	id := ids.Relation(a, b)
	var r Relation
	err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		facts, err := lockFacts[RelationFact](ctx, tx, "SELECT facts::text FROM ragcore_relations WHERE id = $1 FOR UPDATE", id)
		if err != nil {
			return err
		}
		facts[source] = f
		r = relationFacts(facts).relation(id, a, b)
		return putRelation(ctx, tx, r, facts)
	})
	if err != nil {
		return Relation{}, fmt.Errorf("graph: upsert relation %q-%q: %w", a, b, err)
	}
	return r, nil
}

func lockFacts[F any](ctx context.Context, tx pgx.Tx, q, id string) (map[string]F, error) {
	var raw string
	if err := tx.QueryRow(ctx, q, id).Scan(&raw); err != nil && err != pgx.ErrNoRows {
		return nil, err
	}
	return decodeFacts[F](raw)
}

// Entities implements Store.
func (p *Postgres) Entities(ctx context.Context, names []string) ([]Entity, error) {
	rows, err := p.db.Query(ctx, `SELECT e.id, e.name, e.entity_type, e.description, e.source_ids,
    (SELECT count(*) FROM ragcore_relations AS r WHERE r.src = e.name OR r.tgt = e.name)
FROM ragcore_entities AS e WHERE e.name = ANY($1::text[]) ORDER BY e.name`, names)
	if err != nil {
		return nil, fmt.Errorf("graph: entities: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Entity, error) {
		var e Entity
		err := row.Scan(&e.ID, &e.Name, &e.Type, &e.Description, &e.SourceIDs, &e.Degree)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("graph: entities: %w", err)
	}
	return out, nil
}

func scanRelations(rows pgx.Rows) ([]Relation, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Relation, error) {
		var r Relation
		err := row.Scan(&r.ID, &r.Source, &r.Target, &r.Description, &r.Keywords, &r.Weight, &r.SourceIDs)
		return r, err
	})
}

// Relations implements Store.
func (p *Postgres) Relations(ctx context.Context, relIDs []string) ([]Relation, error) {
	rows, err := p.db.Query(ctx, "SELECT "+relationColumns+" FROM ragcore_relations WHERE id = ANY($1::text[]) ORDER BY src, tgt", relIDs)
	if err != nil {
		return nil, fmt.Errorf("graph: relations: %w", err)
	}
	out, err := scanRelations(rows)
	if err != nil {
		return nil, fmt.Errorf("graph: relations: %w", err)
	}
	return out, nil
}

// Neighbourhood implements Store.
func (p *Postgres) Neighbourhood(ctx context.Context, names []string, limit int) ([]Relation, error) {
	rows, err := p.db.Query(ctx, "SELECT "+relationColumns+` FROM ragcore_relations
WHERE src = ANY($1::text[]) OR tgt = ANY($1::text[]) ORDER BY weight DESC, id LIMIT $2`, names, limit)
	if err != nil {
		return nil, fmt.Errorf("graph: neighbourhood: %w", err)
	}
	out, err := scanRelations(rows)
	if err != nil {
		return nil, fmt.Errorf("graph: neighbourhood: %w", err)
	}
	return out, nil
}

// RemoveSources implements Store in one transaction.
func (p *Postgres) RemoveSources(ctx context.Context, sources []string) (Changes, error) {
	var ch Changes
	err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		ch = Changes{}
		if err := p.removeRelationSources(ctx, tx, sources, &ch); err != nil {
			return err
		}
		gone, err := p.removeEntitySources(ctx, tx, sources, &ch)
		if err != nil || len(gone) == 0 {
			return err
		}
		// relations of deleted entities (only possible with extractors whose
		// relations cite sources their endpoints do not)
		rows, err := tx.Query(ctx, `DELETE FROM ragcore_relations WHERE src = ANY($1::text[]) OR tgt = ANY($1::text[]) RETURNING id`, gone)
		if err != nil {
			return err
		}
		dangling, err := pgx.CollectRows(rows, pgx.RowTo[string])
		ch.DeletedRelations = append(ch.DeletedRelations, dangling...)
		return err
	})
	if err != nil {
		return Changes{}, fmt.Errorf("graph: remove sources: %w", err)
	}
	return ch, nil
}

func (p *Postgres) removeRelationSources(ctx context.Context, tx pgx.Tx, sources []string, ch *Changes) error {
	rows, err := tx.Query(ctx, `SELECT id, src, tgt, facts::text FROM ragcore_relations WHERE source_ids && $1::text[] ORDER BY id FOR UPDATE`, sources)
	if err != nil {
		return err
	}
	type row struct{ id, a, b, facts string }
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.id, &x.a, &x.b, &x.facts)
		return x, err
	})
	if err != nil {
		return err
	}
	for _, x := range found {
		facts, err := decodeFacts[RelationFact](x.facts)
		if err != nil {
			return fmt.Errorf("relation %s: %w", x.id, err)
		}
		removeAll(facts, sources)
		if len(facts) == 0 {
			if _, err := tx.Exec(ctx, "DELETE FROM ragcore_relations WHERE id = $1", x.id); err != nil {
				return err
			}
			ch.DeletedRelations = append(ch.DeletedRelations, x.id)
			continue
		}
		r := relationFacts(facts).relation(x.id, x.a, x.b)
		if err := putRelation(ctx, tx, r, facts); err != nil {
			return err
		}
		ch.Relations = append(ch.Relations, r)
	}
	return nil
}

// removeEntitySources returns the names of the entities it deleted.
func (p *Postgres) removeEntitySources(ctx context.Context, tx pgx.Tx, sources []string, ch *Changes) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT id, name, facts::text FROM ragcore_entities WHERE source_ids && $1::text[] ORDER BY id FOR UPDATE`, sources)
	if err != nil {
		return nil, err
	}
	type row struct{ id, name, facts string }
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.id, &x.name, &x.facts)
		return x, err
	})
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, x := range found {
		facts, err := decodeFacts[EntityFact](x.facts)
		if err != nil {
			return nil, fmt.Errorf("entity %s: %w", x.id, err)
		}
		removeAll(facts, sources)
		if len(facts) == 0 {
			if _, err := tx.Exec(ctx, "DELETE FROM ragcore_entities WHERE id = $1", x.id); err != nil {
				return nil, err
			}
			ch.DeletedEntities = append(ch.DeletedEntities, x.id)
			gone = append(gone, x.name)
			continue
		}
		e := entityFacts(facts).entity(x.id, x.name)
		if err := putEntity(ctx, tx, e, facts); err != nil {
			return nil, err
		}
		ch.Entities = append(ch.Entities, e)
	}
	return gone, nil
}

// Close closes the pool.
func (p *Postgres) Close(context.Context) error {
	p.db.Close()
	return nil
}
