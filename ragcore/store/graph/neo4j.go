package graph

import (
	"context"
	"fmt"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/tenantgate/tenantgate/ragcore/ids"
)

// Neo4j is the Store on a Neo4j server over Bolt. Entities are
// (:Entity {id, name, entity_type, description, source_ids, facts}) nodes
// MERGEd by name; a relation is one [:RELATED {id, description, keywords,
// weight, source_ids, facts}] edge stored from the smaller name to the
// larger and matched without direction. facts is the JSON of the per-source
// facts (Neo4j properties cannot be maps). The Cypher is deliberately plain:
// MATCH, MERGE, SET, DELETE with parameters, one static label and one
// static relationship type, no APOC, procedures or LOAD CSV.
type Neo4j struct {
	driver neo4j.DriverWithContext
	db     string
}

// NewNeo4j uses driver on database db ("" for the server's default).
func NewNeo4j(driver neo4j.DriverWithContext, db string) *Neo4j {
	return &Neo4j{driver: driver, db: db}
}

func (n *Neo4j) session(ctx context.Context, mode neo4j.AccessMode) neo4j.SessionWithContext {
	return n.driver.NewSession(ctx, neo4j.SessionConfig{DatabaseName: n.db, AccessMode: mode})
}

func (n *Neo4j) write(ctx context.Context, work neo4j.ManagedTransactionWork) (any, error) {
	s := n.session(ctx, neo4j.AccessModeWrite)
	defer s.Close(ctx)
	return s.ExecuteWrite(ctx, work)
}

func (n *Neo4j) read(ctx context.Context, q string, params map[string]any) ([]*neo4j.Record, error) {
	s := n.session(ctx, neo4j.AccessModeRead)
	defer s.Close(ctx)
	out, err := s.ExecuteRead(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, q, params)
		if err != nil {
			return nil, err
		}
		return res.Collect(ctx)
	})
	if err != nil {
		return nil, err
	}
	return out.([]*neo4j.Record), nil
}

// one runs q and returns the string in the first column of its first
// record ("" when there is none).
func one(ctx context.Context, tx neo4j.ManagedTransaction, q string, params map[string]any) (string, error) {
	res, err := tx.Run(ctx, q, params)
	if err != nil {
		return "", err
	}
	recs, err := res.Collect(ctx)
	if err != nil || len(recs) == 0 {
		return "", err
	}
	s, _ := recs[0].Values[0].(string)
	return s, nil
}

func run(ctx context.Context, tx neo4j.ManagedTransaction, q string, params map[string]any) error {
	res, err := tx.Run(ctx, q, params)
	if err != nil {
		return err
	}
	_, err = res.Consume(ctx)
	return err
}

const (
	cySetEntity = `MERGE (e:Entity {name: $name})
SET e.id = $id, e.entity_type = $type, e.description = $description, e.source_ids = $source_ids, e.facts = $facts`
	cySetRelation = `MATCH (a:Entity {name: $src}) MATCH (b:Entity {name: $tgt})
MERGE (a)-[r:RELATED]->(b)
SET r.id = $id, r.description = $description, r.keywords = $keywords, r.weight = $weight, r.source_ids = $source_ids, r.facts = $facts`
	cyRelationColumns = `r.id, a.name, b.name, r.description, r.keywords, r.weight, r.source_ids`
)

func entityParams(e Entity, facts entityFacts) map[string]any {
	return map[string]any{"name": e.Name, "id": e.ID, "type": e.Type, "description": e.Description,
		"source_ids": e.SourceIDs, "facts": encodeFacts(facts)}
}

func relationParams(r Relation, facts relationFacts) map[string]any {
	return map[string]any{"src": r.Source, "tgt": r.Target, "id": r.ID, "description": r.Description,
		"keywords": r.Keywords, "weight": r.Weight, "source_ids": r.SourceIDs, "facts": encodeFacts(facts)}
}

// UpsertEntity implements Store.
func (n *Neo4j) UpsertEntity(ctx context.Context, name, source string, f EntityFact) (Entity, error) {
	out, err := n.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		raw, err := one(ctx, tx, "MATCH (e:Entity {name: $name}) RETURN e.facts", map[string]any{"name": name})
		if err != nil {
			return nil, err
		}
		facts, err := decodeFacts[EntityFact](raw)
		if err != nil {
			return nil, err
		}
		facts[source] = f
		e := entityFacts(facts).entity(ids.Entity(name), name)
		return e, run(ctx, tx, cySetEntity, entityParams(e, facts))
	})
	if err != nil {
		return Entity{}, fmt.Errorf("graph: upsert entity %q: %w", name, err)
	}
	return out.(Entity), nil
}

// UpsertRelation implements Store.
func (n *Neo4j) UpsertRelation(ctx context.Context, a, b, source string, f RelationFact) (Relation, error) {
	a, b = ordered(a, b)
	out, err := n.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		raw, err := one(ctx, tx, "MATCH (:Entity {name: $src})-[r:RELATED]->(:Entity {name: $tgt}) RETURN r.facts",
			map[string]any{"src": a, "tgt": b})
		if err != nil {
			return nil, err
		}
		facts, err := decodeFacts[RelationFact](raw)
		if err != nil {
			return nil, err
		}
		facts[source] = f
		r := relationFacts(facts).relation(ids.Relation(a, b), a, b)
		return r, run(ctx, tx, cySetRelation, relationParams(r, facts))
	})
	if err != nil {
		return Relation{}, fmt.Errorf("graph: upsert relation %q-%q: %w", a, b, err)
	}
	return out.(Relation), nil
}

// Entities implements Store.
func (n *Neo4j) Entities(ctx context.Context, names []string) ([]Entity, error) {
	recs, err := n.read(ctx, `MATCH (e:Entity) WHERE e.name IN $names
OPTIONAL MATCH (e)-[r:RELATED]-(:Entity)
RETURN e.id, e.name, e.entity_type, e.description, e.source_ids, count(r) ORDER BY e.name`, map[string]any{"names": names})
	if err != nil {
		return nil, fmt.Errorf("graph: entities: %w", err)
	}
	out := make([]Entity, 0, len(recs))
	for _, rec := range recs {
		v := rec.Values
		out = append(out, Entity{ID: str(v[0]), Name: str(v[1]), Type: str(v[2]), Description: str(v[3]),
			SourceIDs: strs(v[4]), Degree: int(num(v[5]))})
	}
	return out, nil
}

func toRelations(recs []*neo4j.Record) []Relation {
	out := make([]Relation, 0, len(recs))
	for _, rec := range recs {
		v := rec.Values
		out = append(out, Relation{ID: str(v[0]), Source: str(v[1]), Target: str(v[2]), Description: str(v[3]),
			Keywords: strs(v[4]), Weight: num(v[5]), SourceIDs: strs(v[6])})
	}
	return out
}

// Relations implements Store.
func (n *Neo4j) Relations(ctx context.Context, relIDs []string) ([]Relation, error) {
	recs, err := n.read(ctx, `MATCH (a:Entity)-[r:RELATED]->(b:Entity) WHERE r.id IN $ids
RETURN `+cyRelationColumns+` ORDER BY a.name, b.name`, map[string]any{"ids": relIDs})
	if err != nil {
		return nil, fmt.Errorf("graph: relations: %w", err)
	}
	return toRelations(recs), nil
}

// Neighbourhood implements Store.
func (n *Neo4j) Neighbourhood(ctx context.Context, names []string, limit int) ([]Relation, error) {
	recs, err := n.read(ctx, `MATCH (a:Entity)-[r:RELATED]->(b:Entity) WHERE a.name IN $names OR b.name IN $names
RETURN `+cyRelationColumns+` ORDER BY r.weight DESC, r.id LIMIT $limit`, map[string]any{"names": names, "limit": limit})
	if err != nil {
		return nil, fmt.Errorf("graph: neighbourhood: %w", err)
	}
	return toRelations(recs), nil
}

// RemoveSources implements Store in one write transaction.
func (n *Neo4j) RemoveSources(ctx context.Context, sources []string) (Changes, error) {
	out, err := n.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		var ch Changes
		params := map[string]any{"sources": sources}
		res, err := tx.Run(ctx, `MATCH (a:Entity)-[r:RELATED]->(b:Entity) WHERE any(s IN r.source_ids WHERE s IN $sources)
RETURN r.id, a.name, b.name, r.facts ORDER BY r.id`, params)
		if err != nil {
			return nil, err
		}
		recs, err := res.Collect(ctx)
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			id, a, b := str(rec.Values[0]), str(rec.Values[1]), str(rec.Values[2])
			facts, err := decodeFacts[RelationFact](str(rec.Values[3]))
			if err != nil {
				return nil, fmt.Errorf("relation %s: %w", id, err)
			}
			removeAll(facts, sources)
			if len(facts) == 0 {
				ch.DeletedRelations = append(ch.DeletedRelations, id)
				err = run(ctx, tx, "MATCH (:Entity)-[r:RELATED {id: $id}]->(:Entity) DELETE r", map[string]any{"id": id})
			} else {
				r := relationFacts(facts).relation(id, a, b)
				ch.Relations = append(ch.Relations, r)
				err = run(ctx, tx, cySetRelation, relationParams(r, facts))
			}
			if err != nil {
				return nil, err
			}
		}
		res, err = tx.Run(ctx, `MATCH (e:Entity) WHERE any(s IN e.source_ids WHERE s IN $sources)
RETURN e.id, e.name, e.facts ORDER BY e.id`, params)
		if err != nil {
			return nil, err
		}
		if recs, err = res.Collect(ctx); err != nil {
			return nil, err
		}
		for _, rec := range recs {
			id, name := str(rec.Values[0]), str(rec.Values[1])
			facts, err := decodeFacts[EntityFact](str(rec.Values[2]))
			if err != nil {
				return nil, fmt.Errorf("entity %s: %w", id, err)
			}
			removeAll(facts, sources)
			if len(facts) == 0 {
				ch.DeletedEntities = append(ch.DeletedEntities, id)
				// relations of the entity go with it
				dangling, err := tx.Run(ctx, "MATCH (e:Entity {name: $name})-[r:RELATED]-(:Entity) RETURN r.id", map[string]any{"name": name})
				if err != nil {
					return nil, err
				}
				drecs, err := dangling.Collect(ctx)
				if err != nil {
					return nil, err
				}
				for _, d := range drecs {
					ch.DeletedRelations = append(ch.DeletedRelations, str(d.Values[0]))
				}
				err = run(ctx, tx, "MATCH (e:Entity {name: $name}) DETACH DELETE e", map[string]any{"name": name})
				if err != nil {
					return nil, err
				}
				continue
			}
			e := entityFacts(facts).entity(id, name)
			ch.Entities = append(ch.Entities, e)
			if err := run(ctx, tx, cySetEntity, entityParams(e, facts)); err != nil {
				return nil, err
			}
		}
		return ch, nil
	})
	if err != nil {
		return Changes{}, fmt.Errorf("graph: remove sources: %w", err)
	}
	return out.(Changes), nil
}

// Close closes the driver.
func (n *Neo4j) Close(ctx context.Context) error { return n.driver.Close(ctx) }

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) float64 {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case float64:
		return x
	}
	return 0
}

func strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, str(x))
	}
	return out
}
