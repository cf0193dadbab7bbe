package cypher

import (
	"errors"
	"testing"
)

func TestAllowSchema(t *testing.T) {
	r, err := NewRewriter("Tenant_{tenant}", DefaultProcedures, AllowSchema(true))
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]string{
		"CREATE INDEX doc_id IF NOT EXISTS FOR (n:Doc) ON (n.id)":                                            "CREATE INDEX doc_id IF NOT EXISTS FOR (n:Doc) ON (n.id)",
		"create  text index /* c */ t FOR ()-[r:REL]-() ON (r.p);":                                           "create text index t FOR ()-[r:REL]-() ON (r.p)",
		"CREATE FULLTEXT INDEX ft FOR (n:base) ON EACH [n.entity_id]":                                        "CREATE FULLTEXT INDEX ft FOR (n:base) ON EACH [n.entity_id]",
		"CREATE VECTOR INDEX v FOR (n:Chunk) ON n.embedding OPTIONS {indexConfig: {`vector.dimensions`: 8}}": "CREATE VECTOR INDEX v FOR (n:Chunk) ON n.embedding OPTIONS {indexConfig: {`vector.dimensions`: 8}}",
		"CREATE CONSTRAINT c IF NOT EXISTS FOR (n:Doc) REQUIRE n.id IS UNIQUE":                               "CREATE CONSTRAINT c IF NOT EXISTS FOR (n:Doc) REQUIRE n.id IS UNIQUE",
		"DROP INDEX doc_id IF EXISTS":                                                                        "DROP INDEX doc_id IF EXISTS",
		"DROP CONSTRAINT c":                                                                                  "DROP CONSTRAINT c",
		"SHOW INDEXES":                                                                                       "SHOW INDEXES",
		"SHOW UNIQUENESS CONSTRAINTS":                                                                        "SHOW UNIQUENESS CONSTRAINTS",
		"SHOW ALL INDEX // list them\n":                                                                      "SHOW ALL INDEX",
		"MATCH (n:Doc) RETURN n":                                                                             "MATCH (n:Doc:Tenant_acme) RETURN n",
	}
	for q, want := range allowed {
		if got, err := r.Rewrite(q, "acme"); got != want || err != nil {
			t.Errorf("%q: got %q, %v; want %q", q, got, err, want)
		}
	}
	refused := map[string]Reason{
		"CREATE USER mallory SET PASSWORD 'x'":                                  ReasonAdmin,
		"CREATE OR REPLACE DATABASE x":                                          ReasonAdmin,
		"SHOW DATABASES":                                                        ReasonAdmin,
		"SHOW INDEXES YIELD name WHERE COUNT { MATCH (n) } > 0":                 ReasonAdmin,
		"SHOW INDEXES; MATCH (n) DETACH DELETE n":                               ReasonAdmin,
		"DROP DATABASE neo4j":                                                   ReasonAdmin,
		"GRANT ROLE admin TO mallory":                                           ReasonAdmin,
		"CREATE INDEX i FOR (n:Doc) ON (n.id); CREATE USER m SET PASSWORD 'x'":  ReasonAdmin,
		"CREATE INDEX i FOR (n:Doc) ON (n.id) OPTIONS {x: COUNT { MATCH (n) }}": ReasonAdmin,
		"CREATE INDEX i FOR (n:Doc) ON (n.id) OPTIONS $opts":                    ReasonAdmin,
		"CREATE INDEX i FOR (n:Tenant_globex) ON (n.id)":                        ReasonReservedLabel,
		"CREATE CONSTRAINT c FOR (n:`tenant_globex`) REQUIRE n.id IS UNIQUE":    ReasonReservedLabel,
		"CALL { SHOW INDEXES } RETURN 1":                                        ReasonAdmin,
		"EXPLAIN CREATE INDEX i FOR (n:Doc) ON (n.id)":                          ReasonAdmin,
	}
	for q, want := range refused {
		_, err := r.Rewrite(q, "acme")
		var ce *Error
		if !errors.As(err, &ce) || ce.Reason != want {
			t.Errorf("%q: got %v, want a %s refusal", q, err, want)
		}
	}
	// Without the option, schema commands are refused like the rest.
	plain := testRewriter(t)
	if _, err := plain.Rewrite("CREATE INDEX i FOR (n:Doc) ON (n.id)", "acme"); err == nil {
		t.Error("a schema command passed without AllowSchema")
	}
}

func TestChecker(t *testing.T) {
	r := NewChecker(DefaultProcedures)
	if l := r.Label("acme"); l != "" {
		t.Errorf("a checker has label %q", l)
	}
	for q, want := range map[string]string{
		"MATCH (n:Person {name: $name}) RETURN n":                           "MATCH (n:Person {name: $name}) RETURN n",
		"MATCH (n) RETURN labels(n)":                                        "MATCH (n) RETURN labels(n) AS `labels(n)`",
		"MATCH (n:Tenant_x) RETURN count(n)":                                "MATCH (n:Tenant_x) RETURN count(n) AS `count(n)`",
		"CALL db.index.fulltext.queryNodes('i', $q) YIELD node RETURN node": "CALL db.index.fulltext.queryNodes('i', $q) YIELD node RETURN node",
	} {
		if got, err := r.Rewrite(q, "acme"); got != want || err != nil {
			t.Errorf("%q: got %q, %v; want %q", q, got, err, want)
		}
	}
	for q, want := range map[string]Reason{
		"USE other MATCH (n) RETURN n":            ReasonUse,
		"SHOW DATABASES":                          ReasonAdmin,
		"CREATE INDEX i FOR (n:D) ON (n.p)":       ReasonAdmin,
		"CALL db.labels()":                        ReasonProcedure,
		"RETURN apoc.text.join(['a'], ',')":       ReasonFunction,
		"LOAD CSV FROM 'file:///x' AS l RETURN l": ReasonLoadCSV,
		"MATCH (n:$(x)) RETURN n":                 ReasonDynamicLabel,
	} {
		_, err := r.Rewrite(q, "acme")
		var ce *Error
		if !errors.As(err, &ce) || ce.Reason != want {
			t.Errorf("%q: got %v, want a %s refusal", q, err, want)
		}
	}
}
