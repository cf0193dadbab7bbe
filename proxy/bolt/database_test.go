package bolt

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// decodeDatabaseName inverts databaseNamer.name, for the injectivity test.
func decodeDatabaseName(n databaseNamer, name string) (string, bool) {
	body, ok := strings.CutPrefix(name, n.prefix)
	if !ok {
		return "", false
	}
	if body, ok = strings.CutSuffix(body, n.suffix); !ok {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '.' {
			b.WriteByte(c)
			continue
		}
		if i++; i == len(body) {
			return "", false
		}
		switch c := body[i]; {
		case c == '.':
			b.WriteByte('_')
		case c >= 'a' && c <= 'z':
			b.WriteByte(c - 'a' + 'A')
		default:
			return "", false
		}
	}
	return b.String(), true
}

func TestDatabaseNames(t *testing.T) {
	n, err := newDatabaseNamer(DefaultDatabaseTemplate)
	if err != nil {
		t.Fatal(err)
	}
	for tenant, want := range map[string]string{
		"acme":                                 "tenant-acme",
		"6f1c2a9e-3b7d-4c1e-9a2b-0d5e8f7a6b3c": "tenant-6f1c2a9e-3b7d-4c1e-9a2b-0d5e8f7a6b3c",
		"Acme":                                 "tenant-.acme",
		"acme_corp":                            "tenant-acme..corp",
		"a":                                    "tenant-a",
	} {
		if got, err := n.name(tenant); got != want || err != nil {
			t.Errorf("name(%q) = %q, %v; want %q", tenant, got, err, want)
		}
	}
	// Neo4j folds case: ids that differ only in case must not share a name.
	a, _ := n.name("ACME")
	b, _ := n.name("acme")
	if strings.EqualFold(a, b) {
		t.Errorf("ACME and acme both map to %q", a)
	}

	// Random valid tenant ids: every name is a valid Neo4j name and decodes
	// back to its id (so no two ids share one), or the id is refused.
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
	r := rand.New(rand.NewPCG(1, 2))
	refused := 0
	for range 20000 {
		id := []byte{alphabet[r.IntN(62)]} // ids start with a letter or digit
		for range r.IntN(40) {
			id = append(id, alphabet[r.IntN(len(alphabet))])
		}
		name, err := n.name(string(id))
		if err != nil {
			refused++
			continue
		}
		if !validNeo4jName(name) {
			t.Fatalf("name(%q) = %q is not a valid Neo4j database name", id, name)
		}
		if back, ok := decodeDatabaseName(n, name); !ok || back != string(id) {
			t.Fatalf("name(%q) = %q decodes to %q", id, name, back)
		}
	}
	if refused == 0 || refused > 15000 {
		t.Errorf("%d of 20000 ids refused", refused)
	}

	bare, err := newDatabaseNamer("{tenant}")
	if err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"ab", "1abc", "Acme", "system", "systemx", strings.Repeat("a", 64), "a:b", ""} {
		if name, err := bare.name(tenant); err == nil {
			t.Errorf("{tenant}: %q mapped to %q, want a refusal", tenant, name)
		}
	}
	if name, err := bare.name("acme"); name != "acme" || err != nil {
		t.Errorf("{tenant}: acme = %q, %v", name, err)
	}

	for _, template := range []string{"tenant", "Tenant-{tenant}", "tenant_{tenant}", "1-{tenant}", "{tenant}-{tenant}", "system-{tenant}", strings.Repeat("a", 63) + "{tenant}"} {
		if _, err := newDatabaseNamer(template); err == nil {
			t.Errorf("template %q accepted", template)
		}
	}
}

func validNeo4jName(name string) bool {
	if len(name) < 3 || len(name) > 63 || name[0] < 'a' || name[0] > 'z' || strings.HasPrefix(name, "system") {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// dbOf is the db field of a received RUN, BEGIN or ROUTE.
func dbOf(m receivedMessage) any {
	field := map[byte]int{msgRun: 2, msgBegin: 0, msgRoute: 2}[m.tag]
	v, _ := mapOf(m.fields[field]).Get("db")
	return v
}

func TestDriverDatabaseModeRoutesEachTenant(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version version
		scheme  string
	}{
		{"bolt 5.8 direct", version{5, 8}, "bolt"},
		{"bolt 5.8 routing", version{5, 8}, "neo4j"},
		{"bolt 4.4 routing", version{4, 4}, "neo4j"},
		{"bolt 4.4 direct", version{4, 4}, "bolt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer := newScriptedPeer(t, tc.version)
			p := startProxyFor(t, peer, Options{Mode: "database"}, "acme", "globex", "Acme_Corp")
			// No label: the statement reaches Neo4j as written (printed).
			peer.onRun("MATCH (n:Person {name: $name}) RETURN n", []string{"n"},
				[]any{node(tc.version, 7, []string{"Person", "Extra"}, map[string]any{"name": "Alice"})})

			want := map[string]string{"acme": "tenant-acme", "globex": "tenant-globex", "Acme_Corp": "tenant-.acme...corp"}
			for _, tenant := range []string{"acme", "globex", "Acme_Corp"} {
				before := len(peer.messages(msgRun))
				d := newDriver(t, tc.scheme+"://"+p.addr, p.token(tenant))
				res, err := neo4j.ExecuteQuery(testContext(t), d, "MATCH (n:Person {name: $name}) RETURN n",
					map[string]any{"name": "Alice"}, neo4j.EagerResultTransformer)
				if err != nil {
					t.Fatalf("%s: %v", tenant, err)
				}
				if n := res.Records[0].Values[0].(neo4j.Node); !reflect.DeepEqual(n.Labels, []string{"Person", "Extra"}) {
					t.Errorf("%s: labels %v, want them untouched", tenant, n.Labels)
				}
				runs := peer.messages(msgRun)
				if len(runs) != before+1 {
					t.Fatalf("%s: the upstream got %d new RUNs", tenant, len(runs)-before)
				}
				if db := dbOf(runs[before]); db != want[tenant] {
					t.Errorf("%s: RUN reached the upstream with db %v, want %s", tenant, db, want[tenant])
				}
			}
			routes := peer.messages(msgRoute)
			if (len(routes) > 0) != (tc.scheme == "neo4j") {
				t.Errorf("%d ROUTEs reached the upstream", len(routes))
			}
			for _, r := range routes {
				if db, _ := dbOf(r).(string); !strings.HasPrefix(db, "tenant-") {
					t.Errorf("ROUTE reached the upstream with db %q", db)
				}
			}
		})
	}
}

func TestDriverDatabaseModeTransactionsAndRefusals(t *testing.T) {
	peer := newScriptedPeer(t)
	p := startProxy(t, peer, Options{Mode: "database", DatabaseTemplate: "kg.{tenant}", Database: "graph"})
	peer.onRun("CREATE (n:Doc {id: $id})", nil)
	peer.onRun("MATCH (n) RETURN labels(n) AS l", []string{"l"}, []any{[]any{"Doc"}})
	ctx := testContext(t)
	d := newDriver(t, "neo4j://"+p.addr, p.token("acme"))

	// The app names the configured database; the upstream gets the tenant's.
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
	for _, m := range append(peer.messages(msgBegin), peer.messages(msgRoute)...) {
		if db := dbOf(m); db != "kg.acme" {
			t.Errorf("message 0x%02X reached the upstream with db %v, want kg.acme", m.tag, db)
		}
	}
	// labels(x) is not rewritten: there is no tenant label.
	if _, err := neo4j.ExecuteQuery(ctx, d, "MATCH (n) RETURN labels(n) AS l", nil, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase("graph")); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		query, db string
	}{
		{"RETURN 1", "tenant-globex"},
		{"RETURN 1", "kg.globex"},
		{"RETURN 1", "system"},
		{"USE neo4j MATCH (n) RETURN n", ""},
		{"SHOW DATABASES", ""},
		{"CREATE USER mallory SET PASSWORD 'x'", ""},
		{"CALL db.labels()", ""},
		{"LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l", ""},
		{"CREATE INDEX i FOR (n:Doc) ON (n.id)", ""}, // allow_schema is off
	} {
		opts := []neo4j.ExecuteQueryConfigurationOption{neo4j.ExecuteQueryWithDatabase("graph")}
		if tt.db != "" {
			opts = []neo4j.ExecuteQueryConfigurationOption{neo4j.ExecuteQueryWithDatabase(tt.db)}
		}
		_, err := neo4j.ExecuteQuery(testContext(t), d, tt.query, nil, neo4j.EagerResultTransformer, opts...)
		var ne *neo4j.Neo4jError
		if !errors.As(err, &ne) || ne.Code != codeForbidden {
			t.Errorf("%s (db %q): got %v, want %s", tt.query, tt.db, err, codeForbidden)
		}
	}
	if got := peer.queries(); !reflect.DeepEqual(got, []string{"CREATE (n:Doc {id: $id})", "MATCH (n) RETURN labels(n) AS l"}) {
		t.Errorf("the upstream got %q", got)
	}
	for _, m := range peer.messages(msgRoute) {
		if db := dbOf(m); db != "kg.acme" {
			t.Errorf("ROUTE reached the upstream with db %v", db)
		}
	}
}

func TestDatabaseModeLogonSwitchesDatabase(t *testing.T) {
	peer := newScriptedPeer(t)
	p := startProxyFor(t, peer, Options{Mode: "database", DatabaseTemplate: "{tenant}"}, "acme", "globex", "9lives")
	peer.onRun("RETURN 1 AS x", []string{"x"}, []any{int64(1)})
	c := dialRaw(t, p.addr, bolt58)
	c.logon(p.token("acme"))
	run := func() {
		c.send(msgRun, "RETURN 1 AS x", kv(), kv())
		c.send(msgPull, kv("n", int64(-1)))
		c.expect(msgSuccess)
		c.expect(msgRecord)
		c.expect(msgSuccess)
	}
	run()
	c.send(msgLogoff)
	c.expect(msgSuccess)
	c.send(msgLogon, kv("scheme", "bearer", "credentials", p.token("globex")))
	c.expect(msgSuccess)
	run()
	// globex may not name acme's database.
	c.send(msgRun, "RETURN 1 AS x", kv(), kv("db", "acme"))
	if code := failureCode(c.expect(msgFailure)); code != codeForbidden {
		t.Errorf("another tenant's database: code %q", code)
	}
	var dbs []any
	for _, m := range peer.messages(msgRun) {
		dbs = append(dbs, dbOf(m))
	}
	if !reflect.DeepEqual(dbs, []any{"acme", "globex"}) {
		t.Errorf("RUNs reached the upstream with db %v", dbs)
	}

	// A tenant id with no valid name under the template cannot log in.
	c2 := dialRaw(t, p.addr, bolt58)
	c2.send(msgHello, kv("user_agent", "raw/1.0"))
	c2.expect(msgSuccess)
	c2.send(msgLogon, kv("scheme", "bearer", "credentials", p.token("9lives")))
	if code := failureCode(c2.expect(msgFailure)); code != codeUnauthorized {
		t.Errorf("unmappable tenant: code %q", code)
	}
}

func TestAllowSchema(t *testing.T) {
	for _, mode := range []string{"label", "database"} {
		t.Run(mode, func(t *testing.T) {
			peer := newScriptedPeer(t)
			p := startProxy(t, peer, Options{Mode: mode, AllowSchema: true})
			const index = "CREATE INDEX doc_id IF NOT EXISTS FOR (n:Doc) ON (n.id)"
			peer.onRun(index, nil)
			c := dialRaw(t, p.addr, bolt58)
			c.logon(p.token("acme"))
			c.send(msgRun, "CREATE INDEX doc_id /* operator */ IF NOT EXISTS FOR (n:Doc) ON (n.id)", kv(), kv())
			c.expect(msgSuccess)
			for _, q := range []string{"CREATE USER mallory SET PASSWORD 'x'", "SHOW DATABASES", "DROP DATABASE neo4j"} {
				c.send(msgRun, q, kv(), kv())
				if code := failureCode(c.expect(msgFailure)); code != codeForbidden {
					t.Errorf("%s: code %q", q, code)
				}
				c.send(msgReset)
				c.expect(msgSuccess)
			}
			if got := peer.queries(); !reflect.DeepEqual(got, []string{index}) {
				t.Errorf("the upstream got %q", got)
			}
		})
	}
}
