package graph

import (
	"context"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/ragcore/ids"
)

func newPostgresStore(t *testing.T) Store {
	t.Helper()
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testutil.NewPostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range Schema() {
		if _, err := db.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	s := NewPostgres(db)
	t.Cleanup(func() { s.Close(ctx) })
	return s
}

func TestPostgresGraph(t *testing.T) { testStore(t, newPostgresStore(t)) }

// testStore exercises any Store implementation on an empty graph.
func testStore(t *testing.T, s Store) {
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	org := EntityFact{Type: "organization", Description: "Acme builds rockets."}
	// chunk c1 mentions Acme, Jane, Texas; c2 (another doc) mentions Acme and Jane
	for _, step := range []struct {
		name, src string
		f         EntityFact
	}{
		{"Acme", "c1", org},
		{"Jane Doe", "c1", EntityFact{Type: "person", Description: "Jane leads Acme."}},
		{"Texas", "c1", EntityFact{Type: "location", Description: "Acme is in Texas."}},
		{"Acme", "c2", EntityFact{Type: "organization", Description: "Acme hired Jane."}},
		{"Jane Doe", "c2", EntityFact{Type: "person", Description: "Acme hired Jane."}},
	} {
		_, err := s.UpsertEntity(ctx, step.name, step.src, step.f)
		must(err)
	}
	e, err := s.UpsertEntity(ctx, "Acme", "c1", org) // idempotent
	must(err)
	if want := []string{"c1", "c2"}; e.ID != ids.Entity("Acme") || !reflect.DeepEqual(e.SourceIDs, want) || e.Description != "Acme builds rockets.\nAcme hired Jane." {
		t.Fatalf("merged entity %+v", e)
	}
	r, err := s.UpsertRelation(ctx, "Jane Doe", "Acme", "c1", RelationFact{Description: "Jane leads Acme.", Keywords: []string{"leads"}, Weight: 1})
	must(err)
	if r.Source != "Acme" || r.Target != "Jane Doe" || r.ID != ids.Relation("Acme", "Jane Doe") {
		t.Fatalf("relation not normalised: %+v", r)
	}
	r, err = s.UpsertRelation(ctx, "Acme", "Jane Doe", "c2", RelationFact{Description: "Acme hired Jane.", Keywords: []string{"hired"}, Weight: 2})
	must(err)
	if r.Weight != 3 || !reflect.DeepEqual(r.Keywords, []string{"hired", "leads"}) {
		t.Fatalf("merged relation %+v", r)
	}
	_, err = s.UpsertRelation(ctx, "Acme", "Texas", "c1", RelationFact{Description: "Acme is in Texas.", Weight: 1})
	must(err)

	ents, err := s.Entities(ctx, []string{"Acme", "Texas", "Nobody"})
	must(err)
	if len(ents) != 2 || ents[0].Name != "Acme" || ents[0].Degree != 2 || ents[1].Degree != 1 || ents[0].Type != "organization" {
		t.Fatalf("Entities = %+v", ents)
	}
	rels, err := s.Neighbourhood(ctx, []string{"Jane Doe"}, 10)
	must(err)
	if len(rels) != 1 || rels[0].ID != ids.Relation("Acme", "Jane Doe") {
		t.Fatalf("Neighbourhood(Jane) = %+v", rels)
	}
	rels, err = s.Neighbourhood(ctx, []string{"Acme"}, 1)
	must(err)
	if len(rels) != 1 || rels[0].Weight != 3 {
		t.Fatalf("Neighbourhood(Acme, 1) = %+v, want the heaviest", rels)
	}
	rels, err = s.Relations(ctx, []string{ids.Relation("Acme", "Texas"), "rel-missing"})
	must(err)
	if len(rels) != 1 || rels[0].Target != "Texas" {
		t.Fatalf("Relations = %+v", rels)
	}

	// removing c1: Texas and Acme-Texas only had c1; Acme, Jane and their relation keep c2
	ch, err := s.RemoveSources(ctx, []string{"c1"})
	must(err)
	if !reflect.DeepEqual(ch.DeletedEntities, []string{ids.Entity("Texas")}) ||
		!reflect.DeepEqual(ch.DeletedRelations, []string{ids.Relation("Acme", "Texas")}) {
		t.Fatalf("deleted %+v", ch)
	}
	if len(ch.Entities) != 2 || len(ch.Relations) != 1 || ch.Relations[0].Weight != 2 || ch.Relations[0].Description != "Acme hired Jane." {
		t.Fatalf("updated %+v", ch)
	}
	ents, err = s.Entities(ctx, []string{"Acme", "Texas"})
	must(err)
	if len(ents) != 1 || ents[0].Description != "Acme hired Jane." || ents[0].Degree != 1 {
		t.Fatalf("after removal Entities = %+v", ents)
	}
	ch, err = s.RemoveSources(ctx, []string{"c2"})
	must(err)
	if len(ch.DeletedEntities) != 2 || len(ch.DeletedRelations) != 1 || len(ch.Entities)+len(ch.Relations) != 0 {
		t.Fatalf("removing the last source: %+v", ch)
	}
	if ents, _ = s.Entities(ctx, []string{"Acme", "Jane Doe"}); len(ents) != 0 {
		t.Fatalf("graph not empty: %+v", ents)
	}
}
