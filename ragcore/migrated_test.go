package ragcore

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/ragcore/store/vector"
)

// migrate does to ragcore's tables what `tenantgate pg migrate` is expected
// to do: a tenant column defaulting to the app.tenant_id setting, the
// primary key widened to (tenant_id, id) under its old name, row-level
// security forced with one policy. It returns the URL of a non-owner
// NOBYPASSRLS role that can use the tables.
func migrate(t *testing.T, ctx context.Context, dbURL string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	role := testutil.UniqueName("ragcore_app_")
	stmts := []string{
		"SELECT set_config('app.tenant_id', 'migration', false)", // the default is evaluated while adding the column
		fmt.Sprintf("CREATE ROLE %s LOGIN NOBYPASSRLS", role),
	}
	tables := []string{"ragcore_entities", "ragcore_relations"}
	for _, ns := range vector.Namespaces {
		tables = append(tables, ns.Table())
	}
	for _, tb := range tables {
		stmts = append(stmts,
			fmt.Sprintf("ALTER TABLE %s ADD COLUMN tenant_id text NOT NULL DEFAULT current_setting('app.tenant_id')", tb),
			fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s_pkey", tb, tb),
			fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s_pkey PRIMARY KEY (tenant_id, id)", tb, tb),
			fmt.Sprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY", tb),
			fmt.Sprintf("ALTER TABLE %s FORCE ROW LEVEL SECURITY", tb),
			fmt.Sprintf(`CREATE POLICY tenant_isolation ON %s USING (tenant_id = current_setting('app.tenant_id', true))
				WITH CHECK (tenant_id = current_setting('app.tenant_id', true))`, tb),
			fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %s", tb, role),
		)
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dbURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), "DROP OWNED BY "+role)
		c.Exec(context.Background(), "DROP ROLE "+role)
	})
	u, _ := url.Parse(dbURL)
	u.User = url.User(role)
	return u.String()
}

// asTenant returns settings whose PostgreSQL sessions carry app.tenant_id,
// the way the sidecar sets it, with Redis and Mongo kept apart per tenant
// as the sidecar would.
func asTenant(t *testing.T, base Settings, roleURL, tenant string) Settings {
	t.Helper()
	u, _ := url.Parse(roleURL)
	u.RawQuery += "&options=" + strings.ReplaceAll(url.QueryEscape("-c app.tenant_id="+tenant), "+", "%20") // pgx does not read + as a space
	s := testSettings(t)                                                                                    // private Redis prefix and Mongo database
	s.Postgres = u.String()
	return s
}

// TestMigratedSchema checks that ragcore's SQL keeps working, unchanged,
// on tables made tenant-scoped underneath it, and that two tenants with
// identical documents (identical ids) stay apart. It stands in for the
// PostgreSQL half of the end-to-end test through tenantgate.
func TestMigratedSchema(t *testing.T) {
	ctx := context.Background()
	base := testSettings(t)
	roleURL := migrate(t, ctx, base.Postgres)
	acme := openTest(t, asTenant(t, base, roleURL, "acme"))
	techstart := openTest(t, asTenant(t, base, roleURL, "techstart"))

	ingest := func(e *Engine, corpusName string) map[string]string {
		docIDs := map[string]string{}
		for name, text := range corpus(t, corpusName) {
			res, err := e.Ingest(ctx, name, text)
			if err != nil {
				t.Fatalf("%s/%s: %v", corpusName, name, err)
			}
			docIDs[name] = res.DocID
		}
		return docIDs
	}
	acmeDocs, techDocs := ingest(acme, "acme"), ingest(techstart, "techstart")
	if acmeDocs["industry-report.md"] != techDocs["industry-report.md"] {
		t.Fatal("the shared document should have the same id in both tenants")
	}

	admin, err := pgx.Connect(ctx, base.Postgres) // superuser: sees every tenant's rows
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var tenants []string
	rows, _ := admin.Query(ctx, "SELECT DISTINCT tenant_id FROM ragcore_chunk_vectors WHERE ref = $1 ORDER BY 1", acmeDocs["industry-report.md"])
	if tenants, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || !slices.Equal(tenants, []string{"acme", "techstart"}) {
		t.Fatalf("shared document's chunk rows belong to %v (%v), want both tenants", tenants, err)
	}

	secrets := []struct {
		e         *Engine
		q, theirs string
	}{
		{acme, "Project Heron shelf camera launch date", "Heron"},
		{techstart, "Project Falcon drone launch date", "Falcon"},
	}
	for _, s := range secrets {
		for _, mode := range []Mode{Naive, Local, Global, Hybrid} {
			res, err := s.e.Query(ctx, s.q, mode)
			if err != nil {
				t.Fatal(err)
			}
			leaked := slices.ContainsFunc(res.Chunks, func(c ChunkHit) bool { return strings.Contains(c.Content, s.theirs) }) ||
				slices.ContainsFunc(entityNames(res), func(n string) bool { return strings.Contains(n, s.theirs) })
			if leaked {
				t.Errorf("%s query saw the other tenant's %s: %+v", mode, s.theirs, res)
			}
		}
	}

	// deleting the shared document in one tenant keeps the other's copy
	if err := acme.Delete(ctx, acmeDocs["industry-report.md"]); err != nil {
		t.Fatal(err)
	}
	res, err := techstart.Query(ctx, "Logistics Alliance market forecast 2030", Hybrid)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(sourceNames(res), "industry-report.md") {
		t.Errorf("techstart lost its copy of the shared document: %v", sourceNames(res))
	}
	ents, err := techstart.cfg.Graph.Entities(ctx, []string{"Logistics Alliance"})
	if err != nil || len(ents) != 1 {
		t.Errorf("techstart graph lost Logistics Alliance: %+v, %v", ents, err)
	}
	if ents, _ = acme.cfg.Graph.Entities(ctx, []string{"Logistics Alliance"}); len(ents) != 0 {
		t.Errorf("acme still has Logistics Alliance: %+v", ents)
	}
}
