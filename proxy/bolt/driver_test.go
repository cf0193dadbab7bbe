package bolt

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/config"
)

// These tests drive the official Go driver through the proxy to the
// scripted peer, so what the upstream receives and what the app sees are
// both asserted on real Bolt traffic.

func newDriver(t *testing.T, target, token string) neo4j.DriverWithContext {
	t.Helper()
	d, err := neo4j.NewDriverWithContext(target, neo4j.BearerAuth(token), func(c *config.Config) {
		c.SocketConnectTimeout = 2 * time.Second
		c.ConnectionAcquisitionTimeout = 5 * time.Second
		c.MaxTransactionRetryTime = 0
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDriverQueriesAreScoped(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version version
		scheme  string
	}{
		{"bolt 5.8 direct", version{5, 8}, "bolt"},
		{"bolt 5.0 direct", version{5, 0}, "bolt"},
		{"bolt 4.4 direct", version{4, 4}, "bolt"},
		{"bolt 5.8 routing", version{5, 8}, "neo4j"},
		{"bolt 4.4 routing", version{4, 4}, "neo4j"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer := newScriptedPeer(t, tc.version)
			p := startProxy(t, peer, Options{})
			peer.onRun("MATCH (n:Person:Tenant_acme {name: $name}) RETURN n", []string{"n"},
				[]any{node(tc.version, 7, []string{"Person", "Tenant_acme"}, map[string]any{"name": "Alice"})})

			d := newDriver(t, tc.scheme+"://"+p.addr, p.token("acme"))
			res, err := neo4j.ExecuteQuery(testContext(t), d, "MATCH (n:Person {name: $name}) RETURN n",
				map[string]any{"name": "Alice"}, neo4j.EagerResultTransformer)
			if err != nil {
				t.Fatal(err)
			}
			n, ok := res.Records[0].Values[0].(neo4j.Node)
			if !ok {
				t.Fatalf("got %T, want a node", res.Records[0].Values[0])
			}
			if !reflect.DeepEqual(n.Labels, []string{"Person"}) || n.Props["name"] != "Alice" {
				t.Errorf("node = %+v: the tenant label must be hidden, the rest kept", n)
			}
			runs := peer.messages(msgRun)
			if len(runs) != 1 {
				t.Fatalf("the upstream got %d RUNs: %v", len(runs), peer.queries())
			}
			params := runs[0].fields[1]
			if v, _ := mapOf(params).Get("name"); v != "Alice" {
				t.Errorf("parameters reached the upstream as %#v", params)
			}
			// A neo4j:// driver routed through the proxy's table: had it seen
			// the upstream's addresses, it could not have connected at all.
			if routed := len(peer.messages(msgRoute)) > 0; routed != (tc.scheme == "neo4j") {
				t.Errorf("ROUTE reached the upstream: %v", routed)
			}
			for _, m := range append(peer.messages(msgHello), peer.messages(msgLogon)...) {
				if strings.Contains(dump(m.fields), p.token("acme")[:20]) {
					t.Error("the client's token reached the upstream")
				}
			}
		})
	}
}

func TestDriverRefusalNeverReachesUpstream(t *testing.T) {
	peer := newScriptedPeer(t)
	p := startProxy(t, peer, Options{})
	peer.onRun("MATCH (n:Tenant_acme) RETURN count(n) AS c", []string{"c"}, []any{int64(3)})
	d := newDriver(t, "bolt://"+p.addr, p.token("acme"))

	tests := []struct {
		query, code string
	}{
		{"CALL db.labels()", codeForbidden},
		{"MATCH (n:Tenant_globex) RETURN n", codeForbidden},
		{"MATCH (n) SET n:Tenant_globex", codeForbidden},
		{"LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l", codeForbidden},
		{"SHOW DATABASES", codeForbidden},
		{"MATCH (n RETURN n", codeSyntax},
	}
	for _, tt := range tests {
		_, err := neo4j.ExecuteQuery(testContext(t), d, tt.query, nil, neo4j.EagerResultTransformer)
		var ne *neo4j.Neo4jError
		if !errors.As(err, &ne) || ne.Code != tt.code {
			t.Errorf("%s: got %v, want a %s error", tt.query, err, tt.code)
		}
		// The connection recovers (RESET) and keeps working.
		res, err := neo4j.ExecuteQuery(testContext(t), d, "MATCH (n) RETURN count(n) AS c", nil, neo4j.EagerResultTransformer)
		if err != nil || res.Records[0].Values[0] != int64(3) {
			t.Errorf("after refusing %q: %v", tt.query, err)
		}
	}
	for _, q := range peer.queries() {
		if q != "MATCH (n:Tenant_acme) RETURN count(n) AS c" {
			t.Errorf("a refused statement reached the upstream: %s", q)
		}
	}
	if !strings.Contains(p.env.AuditLog(), "cypher_reserved_label") {
		t.Error("refusals are not audited")
	}
}

func TestDriverBadTokenIsUnauthorized(t *testing.T) {
	for _, v := range []version{{5, 8}, {4, 4}} {
		t.Run(v.String(), func(t *testing.T) {
			peer := newScriptedPeer(t, v)
			p := startProxy(t, peer, Options{})
			d := newDriver(t, "bolt://"+p.addr, "not-a-jwt")
			_, err := neo4j.ExecuteQuery(testContext(t), d, "RETURN 1", nil, neo4j.EagerResultTransformer)
			var ne *neo4j.Neo4jError
			if !errors.As(err, &ne) || ne.Code != codeUnauthorized {
				t.Fatalf("got %v, want %s", err, codeUnauthorized)
			}
			if n := len(peer.messages(msgRun)) + len(peer.messages(msgLogon)); n != 0 {
				t.Errorf("the upstream got %d messages after a refused login", n)
			}
		})
	}
}

func TestDriverExplicitTransactionAndDatabase(t *testing.T) {
	peer := newScriptedPeer(t)
	p := startProxy(t, peer, Options{Database: "graph"})
	peer.onRun("CREATE (n:Doc:Tenant_acme {id: $id})", nil)
	d := newDriver(t, "bolt://"+p.addr, p.token("acme"))
	ctx := testContext(t)

	s := d.NewSession(ctx, neo4j.SessionConfig{DatabaseName: "graph"})
	defer s.Close(ctx)
	tx, err := s.BeginTransaction(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Run(ctx, "CREATE (n:Doc {id: $id})", map[string]any{"id": 1}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	begins := peer.messages(msgBegin)
	if len(begins) != 1 {
		t.Fatalf("got %d BEGINs", len(begins))
	}
	if db, _ := mapOf(begins[0].fields[0]).Get("db"); db != "graph" {
		t.Errorf("BEGIN reached the upstream with db %v", db)
	}

	other := d.NewSession(ctx, neo4j.SessionConfig{DatabaseName: "system"})
	defer other.Close(ctx)
	_, err = other.Run(ctx, "RETURN 1", nil)
	var ne *neo4j.Neo4jError
	if !errors.As(err, &ne) || ne.Code != codeForbidden {
		t.Errorf("another database: got %v, want %s", err, codeForbidden)
	}
	if slices.Contains(peer.queries(), "RETURN 1") {
		t.Error("a statement for another database reached the upstream")
	}
}

func TestDriverImpersonationRefused(t *testing.T) {
	peer := newScriptedPeer(t)
	p := startProxy(t, peer, Options{})
	d := newDriver(t, "bolt://"+p.addr, p.token("acme"))
	_, err := neo4j.ExecuteQuery(testContext(t), d, "RETURN 1", nil, neo4j.EagerResultTransformer,
		neo4j.ExecuteQueryWithImpersonatedUser("admin"))
	var ne *neo4j.Neo4jError
	if !errors.As(err, &ne) || ne.Code != codeForbidden {
		t.Errorf("got %v, want %s", err, codeForbidden)
	}
	if len(peer.queries()) != 0 {
		t.Error("an impersonated statement reached the upstream")
	}
}
