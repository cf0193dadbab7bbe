// Package graph is ragcore's knowledge-graph storage role: entities merged
// by name and undirected, weighted relations between them, with degree
// counts and neighbourhood expansion for retrieval.
//
// Every entity and relation remembers, per source (a chunk id), what that
// source said about it: its facts. The visible fields (description, type,
// keywords, weight) are derived from the facts, so removing a document's
// chunks removes exactly what they contributed, and deletes the entities
// and relations that no other source supports.
//
// Two implementations share that logic: Postgres (plain tables, used when
// no Neo4j is configured) and Neo4j (Cypher over Bolt, MERGE by name).
package graph

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
)

// EntityFact is what one source says about an entity.
type EntityFact struct {
	Type        string `json:"type"`
	Description string `json:"description"`
}

// RelationFact is what one source says about a relation.
type RelationFact struct {
	Description string   `json:"description"`
	Keywords    []string `json:"keywords"`
	Weight      float64  `json:"weight"`
}

// Entity is a node of the graph.
type Entity struct {
	ID, Name, Type, Description string
	SourceIDs                   []string
	Degree                      int // number of relations; filled by Store.Entities only
}

// Relation is an undirected edge, Source < Target.
type Relation struct {
	ID, Source, Target, Description string
	Keywords                        []string
	Weight                          float64
	SourceIDs                       []string
}

// Changes reports what removing sources did.
type Changes struct {
	DeletedEntities  []string   // ids of entities no source supports any more
	DeletedRelations []string   // ids of such relations
	Entities         []Entity   // entities that lost some sources but remain
	Relations        []Relation // relations that lost some sources but remain
}

// Store is the knowledge graph.
type Store interface {
	// UpsertEntity records what source says about the entity name and
	// returns the merged entity.
	UpsertEntity(ctx context.Context, name, source string, f EntityFact) (Entity, error)
	// UpsertRelation does the same for the relation between a and b, whose
	// entities must exist.
	UpsertRelation(ctx context.Context, a, b, source string, f RelationFact) (Relation, error)
	// Entities returns the named entities that exist, with their degree.
	Entities(ctx context.Context, names []string) ([]Entity, error)
	// Relations returns the relations with the given ids that exist.
	Relations(ctx context.Context, ids []string) ([]Relation, error)
	// Neighbourhood returns up to limit relations touching any of the named
	// entities, heaviest first.
	Neighbourhood(ctx context.Context, names []string, limit int) ([]Relation, error)
	// RemoveSources forgets everything the sources said.
	RemoveSources(ctx context.Context, sources []string) (Changes, error)
	Close(ctx context.Context) error
}

// maxDescriptions bounds how many distinct source descriptions an entity
// or relation shows.
const maxDescriptions = 8

// entityFacts and relationFacts are the facts of one entity or relation by source.
type (
	entityFacts   map[string]EntityFact
	relationFacts map[string]RelationFact
)

func sortedSources[F any](facts map[string]F) []string {
	keys := make([]string, 0, len(facts))
	for k := range facts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinDescriptions(descs []string) string {
	var out []string
	for _, d := range descs {
		if d != "" && !slices.Contains(out, d) && len(out) < maxDescriptions {
			out = append(out, d)
		}
	}
	return strings.Join(out, "\n")
}

// entity derives an entity from its facts.
func (f entityFacts) entity(id, name string) Entity {
	e := Entity{ID: id, Name: name, SourceIDs: sortedSources(f)}
	types := map[string]int{}
	var descs []string
	for _, s := range e.SourceIDs {
		types[f[s].Type]++
		descs = append(descs, f[s].Description)
	}
	for t, n := range types { // most frequent type, ties alphabetical
		if n > types[e.Type] || (n == types[e.Type] && (e.Type == "" || t < e.Type)) {
			e.Type = t
		}
	}
	e.Description = joinDescriptions(descs)
	return e
}

// relation derives a relation from its facts.
func (f relationFacts) relation(id, a, b string) Relation {
	r := Relation{ID: id, Source: a, Target: b, Keywords: []string{}, SourceIDs: sortedSources(f)}
	var descs []string
	for _, s := range r.SourceIDs {
		fact := f[s]
		r.Weight += fact.Weight
		descs = append(descs, fact.Description)
		for _, k := range fact.Keywords {
			if !slices.Contains(r.Keywords, k) {
				r.Keywords = append(r.Keywords, k)
			}
		}
	}
	sort.Strings(r.Keywords)
	r.Description = joinDescriptions(descs)
	return r
}

// removeAll deletes the given sources from facts and reports whether any was there.
func removeAll[F any](facts map[string]F, sources []string) bool {
	changed := false
	for _, s := range sources {
		if _, ok := facts[s]; ok {
			delete(facts, s)
			changed = true
		}
	}
	return changed
}

func decodeFacts[F any](raw string) (map[string]F, error) {
	facts := map[string]F{}
	if raw == "" {
		return facts, nil
	}
	if err := json.Unmarshal([]byte(raw), &facts); err != nil {
		return nil, err
	}
	return facts, nil
}

func encodeFacts[F any](facts map[string]F) string {
	b, _ := json.Marshal(facts) // plain structs of strings and numbers: cannot fail
	return string(b)
}

// ordered returns a and b with the smaller first.
func ordered(a, b string) (string, string) {
	if b < a {
		return b, a
	}
	return a, b
}
