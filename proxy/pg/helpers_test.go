package pg

import (
	"context"
	"crypto/tls"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantgate/tenantgate/internal/proxytest"
	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/policy"
	"github.com/tenantgate/tenantgate/proxy"
)

// Tenants of the test registry; "gone" is suspended.
const (
	tenantA = "acme"
	tenantB = "globex"
)

// schema is a tenant-scoped table the way `tenantgate pg migrate` leaves
// one: tenant column defaulting to the setting, tenant-first primary key,
// RLS enabled and forced, one policy for reads and writes.
const schema = `
CREATE TABLE items (
	tenant_id text NOT NULL DEFAULT current_setting('app.tenant_id'),
	id int NOT NULL,
	name text,
	PRIMARY KEY (tenant_id, id)
);
ALTER TABLE items ENABLE ROW LEVEL SECURITY;
ALTER TABLE items FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON items
	USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
	WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)));
CREATE SEQUENCE counter;
`

// pgEnv is a proxy in front of a fresh database with the schema above,
// reached by the proxy as a non-owner NOBYPASSRLS role.
type pgEnv struct {
	t        testing.TB
	adminURL string // superuser, the test database
	database string
	addr     string
	engine   *Engine
	proxy    *proxytest.Env
	listener *proxy.Listener
}

func (e *pgEnv) auditLog() string { return e.proxy.AuditLog() }

func newPGEnv(t testing.TB, configure func(*Options)) *pgEnv {
	t.Helper()
	return newPGEnvTLS(t, configure, nil)
}

// newPGEnvTLS is newPGEnv with a listener that answers SSLRequest with TLS.
func newPGEnvTLS(t testing.TB, configure func(*Options), tlsConfig *tls.Config) *pgEnv {
	t.Helper()
	adminURL := testutil.NewPostgresDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	role := testutil.UniqueName("tg_proxy_")
	admin := connect(t, adminURL)
	mustExec(t, admin, "CREATE ROLE "+role+" LOGIN PASSWORD 'proxy-pw' NOSUPERUSER NOBYPASSRLS")
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), testutil.PostgresURL(t))
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		// The database is dropped by testutil after this (cleanups run in
		// reverse), so drop what the role owns in it first.
		_, _ = c.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
	})
	mustExec(t, admin, schema)
	mustExec(t, admin, "GRANT USAGE ON SCHEMA public TO "+role)
	mustExec(t, admin, "GRANT SELECT, INSERT, UPDATE, DELETE ON items TO "+role)
	mustExec(t, admin, "GRANT USAGE, SELECT ON SEQUENCE counter TO "+role)
	_ = admin.Close(ctx)

	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	database := u.Path[1:]
	u.User = url.UserPassword(role, "proxy-pw")
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()

	env := &pgEnv{t: t, adminURL: adminURL, database: database}
	env.proxy = proxytest.NewEnvWith(t, []policy.Tenant{
		{ID: tenantA, Slug: tenantA, Active: true}, {ID: tenantB, Slug: tenantB, Active: true},
		{ID: "gone", Slug: "gone", Active: false},
	})
	opts := Options{Upstream: u.String(), PoolSize: 4, PoolTimeout: 2 * time.Second, ConnectTimeout: 5 * time.Second,
		Metrics: env.proxy.Deps.Metrics, Log: env.proxy.Deps.Log}
	if configure != nil {
		configure(&opts)
	}
	engine, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	env.engine = engine
	t.Cleanup(engine.Close) // runs after the listener's shutdown, registered below
	l := env.proxy.Listen(t, proxy.ListenerConfig{Protocol: "postgres", TLSMode: proxy.TLSNegotiated, TLS: tlsConfig,
		MaxConnections: 100, HandshakeTimeout: 5 * time.Second}, engine)
	env.addr, env.listener = l.Addr().String(), l
	return env
}

func (e *pgEnv) token(tenant string) string { return proxytest.Token(e.t, tenant) }

// url is the DSN an application uses: any user, the JWT as password.
func (e *pgEnv) url(tenant string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword("app", e.token(tenant)), Host: e.addr, Path: "/" + e.database,
		RawQuery: "sslmode=disable"}
	return u.String()
}

// client connects through the proxy as tenant.
func (e *pgEnv) client(tenant string) *pgx.Conn {
	e.t.Helper()
	return connect(e.t, e.url(tenant))
}

// clientMode connects through the proxy as tenant, with pgx in mode.
func (e *pgEnv) clientMode(tenant string, mode pgx.QueryExecMode) *pgx.Conn {
	e.t.Helper()
	cfg, err := pgx.ParseConfig(e.url(tenant))
	if err != nil {
		e.t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		e.t.Fatalf("connect: %v", err)
	}
	e.t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// admin connects to the test database directly as superuser.
func (e *pgEnv) admin() *pgx.Conn {
	e.t.Helper()
	return connect(e.t, e.adminURL)
}

func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func mustExec(t testing.TB, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// names returns the names of the items c sees, ordered by id.
func names(t *testing.T, c *pgx.Conn) []string {
	t.Helper()
	return queryStrings(t, c, "SELECT name FROM items ORDER BY id")
}

// queryStrings returns the one text column of what sql selects on c.
func queryStrings(t *testing.T, c *pgx.Conn, sql string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := c.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// assertOwnSecrets checks, after what, that A (a) sees only its row and B
// (b) only its own, as seedSecrets left them.
func assertOwnSecrets(t *testing.T, a, b *pgx.Conn, after string) {
	t.Helper()
	if got := names(t, a); !slices.Equal(got, []string{"a-secret"}) {
		t.Fatalf("after %q A sees %v", after, got)
	}
	if got := names(t, b); !slices.Equal(got, []string{"b-secret"}) {
		t.Fatalf("after %q B sees %v", after, got)
	}
}

// allRows returns tenant:name of every row, read directly as superuser.
func (e *pgEnv) allRows() []string {
	e.t.Helper()
	c := e.admin()
	rows, err := c.Query(context.Background(), "SELECT tenant_id || ':' || coalesce(name, '') FROM items ORDER BY tenant_id, id")
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// seedSecrets gives each tenant a row with the same id, "a-secret" and
// "b-secret", and returns a client of each and all rows as they stand, for
// attack tests to check that B's row stayed unseen and unchanged.
func (e *pgEnv) seedSecrets() (a, b *pgx.Conn, before []string) {
	e.t.Helper()
	a, b = e.client(tenantA), e.client(tenantB)
	mustExec(e.t, a, "INSERT INTO items (id, name) VALUES (1, 'a-secret')")
	mustExec(e.t, b, "INSERT INTO items (id, name) VALUES (1, 'b-secret')")
	return a, b, e.allRows()
}
