package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenantgate/tenantgate/config"
	"github.com/tenantgate/tenantgate/internal/sidecar"
	"github.com/tenantgate/tenantgate/internal/testutil"
	"github.com/tenantgate/tenantgate/policy"
	pgproxy "github.com/tenantgate/tenantgate/proxy/pg"
	"github.com/tenantgate/tenantgate/ragcore"
	"github.com/tenantgate/tenantgate/ragcore/httpapi"
	"github.com/tenantgate/tenantgate/ragcore/store/status"
)

const jwtSecret = "e2e-test-secret-0123456789abcdef0123"

// signingKey is postgres.tenant_signature.key (hardened mode).
const signingKey = "e2e-signing-key-0123456789abcdef0123"

// The shipped corpora: each tenant has a secret project that must never
// reach the other, and industry-report.md is identical in both.
var (
	tenants = []string{"acme", "techstart"}
	secrets = map[string]string{"acme": "Falcon", "techstart": "Heron"}
	// secretQuestions ask about each tenant's secret project.
	secretQuestions = map[string]string{
		"acme":      "Project Falcon drone that counts pallets: launch date",
		"techstart": "Project Heron shelf camera that spots empty shelves: launch date",
	}
	questions = []string{
		"Who runs the Orion Platform?",
		"Logistics Alliance market forecast 2030",
		"Maria Lopez Delft University",
		secretQuestions["acme"],
		secretQuestions["techstart"],
	}
	modes = []ragcore.Mode{ragcore.Naive, ragcore.Local, ragcore.Global, ragcore.Hybrid}
)

const sharedDoc = "industry-report.md"

// other returns the tenant of the pair that is not t.
func other(t string) string {
	if t == "acme" {
		return "techstart"
	}
	return "acme"
}

// TestRagcoreThroughTenantgate runs ragcore, unchanged and tenant-unaware,
// through an in-process sidecar in front of the real PostgreSQL, Redis and
// MongoDB-wire servers: one engine per tenant token. See docs/ragcore.md,
// "Through tenantgate".
func TestRagcoreThroughTenantgate(t *testing.T) {
	ctx := context.Background()
	st := newStack(t)

	engines := map[string]*ragcore.Engine{}
	for _, tenant := range append(slices.Clone(tenants), "third") {
		engines[tenant] = st.engine(t, tenant)
	}

	// Both tenants ingest their corpus, the identical document included.
	docs := map[string]map[string]string{} // tenant -> file name -> doc id
	for _, tenant := range tenants {
		docs[tenant] = ingestCorpus(t, engines[tenant], tenant)
	}
	shared := docs["acme"][sharedDoc]
	if shared == "" || shared != docs["techstart"][sharedDoc] {
		t.Fatalf("the shared document should have one id in both tenants: %q, %q", shared, docs["techstart"][sharedDoc])
	}
	for _, name := range []string{"company.md", "customers.md"} {
		if docs["acme"][name] == docs["techstart"][name] {
			t.Fatalf("%s should differ between the corpora", name)
		}
	}
	// The status store is per tenant: acme having processed the shared
	// document must not make techstart's ingest of it a no-op (checked in
	// ingestCorpus), and ingesting again is one.
	for _, tenant := range tenants {
		text := readCorpus(t, tenant)[sharedDoc]
		res, err := engines[tenant].Ingest(ctx, sharedDoc, text)
		if err != nil || !res.Unchanged {
			t.Errorf("%s: re-ingesting %s: %+v, %v; want unchanged", tenant, sharedDoc, res, err)
		}
	}

	t.Run("isolation", func(t *testing.T) {
		for _, tenant := range tenants {
			e := engines[tenant]
			for _, q := range questions {
				for _, mode := range modes {
					res := query(t, e, q, mode)
					checkOwn(t, tenant, q, res, docs)
				}
			}
			// Not vacuous: each tenant does find its own secret.
			res := query(t, e, secretQuestions[tenant], ragcore.Hybrid)
			if !strings.Contains(res.Context, secrets[tenant]) {
				t.Errorf("%s: its own secret %s was not found: %s", tenant, secrets[tenant], res.Context)
			}
			list, err := e.Documents(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := statusIDs(list), sortedValues(docs[tenant]); !slices.Equal(got, want) {
				t.Errorf("%s: documents %v, want its own %v", tenant, got, want)
			}
		}
	})

	t.Run("third tenant sees nothing", func(t *testing.T) {
		e := engines["third"]
		list, err := e.Documents(ctx)
		if err != nil || len(list) != 0 {
			t.Errorf("third: documents %+v, %v; want none", list, err)
		}
		for _, q := range questions {
			for _, mode := range modes {
				res := query(t, e, q, mode)
				if len(res.Sources)+len(res.Chunks)+len(res.Entities)+len(res.Relations) != 0 {
					t.Errorf("third: %s %q found %+v", mode, q, res)
				}
			}
		}
		if err := e.Delete(ctx, shared); !errors.Is(err, ragcore.ErrNotFound) {
			t.Errorf("third: deleting %s (which it does not have): %v, want ErrNotFound", shared, err)
		}
	})

	t.Run("http api", func(t *testing.T) {
		// `ragcore serve` in front of the sidecar: one process, one engine
		// per bearer token, each isolated by the token alone.
		srv := httpapi.New(func(ctx context.Context, credential string) (*ragcore.Engine, error) {
			return ragcore.Open(ctx, st.settings(credential))
		}, 4, "", discard)
		defer srv.Close()
		hs := httptest.NewServer(srv.Handler())
		defer hs.Close()
		for _, tenant := range []string{"acme", "techstart", "third"} {
			bearer := token(t, tenant)
			var list []status.Doc
			if code := call(t, hs.URL, bearer, "GET", "/documents", nil, &list); code != http.StatusOK {
				t.Fatalf("%s: GET /documents: %d", tenant, code)
			}
			if got, want := statusIDs(list), sortedValues(docs[tenant]); !slices.Equal(got, want) {
				t.Errorf("%s: GET /documents: %v, want %v", tenant, got, want)
			}
			for _, q := range []string{secretQuestions["acme"], secretQuestions["techstart"]} {
				var res ragcore.Result
				if code := call(t, hs.URL, bearer, "POST", "/query", map[string]string{"query": q, "mode": "hybrid"}, &res); code != http.StatusOK {
					t.Fatalf("%s: POST /query: %d", tenant, code)
				}
				if tenant == "third" {
					if len(res.Sources) != 0 || strings.Contains(res.Context, "Project") {
						t.Errorf("third: POST /query found %v:\n%s", res.Sources, res.Context)
					}
					continue
				}
				checkOwn(t, tenant, q, res, docs)
			}
		}
		forged := token(t, "acme")
		forged = forged[:len(forged)-4] + "AAAA" // bad signature
		if code := call(t, hs.URL, forged, "POST", "/query", map[string]string{"query": "Orion Platform"}, nil); code != http.StatusServiceUnavailable {
			t.Errorf("a forged token: POST /query answered %d, want 503 (the stores refuse it)", code)
		}
	})

	t.Run("upstream", func(t *testing.T) {
		st.checkUpstream(t, docs, map[string][]string{shared: {"acme", "techstart"}})
	})

	t.Run("transparency", func(t *testing.T) {
		direct := directEngine(t)
		through := engines["acme"]
		for name, text := range readCorpus(t, "acme") {
			res, err := direct.Ingest(ctx, name, text)
			if err != nil {
				t.Fatal(err)
			}
			if res.DocID != docs["acme"][name] {
				t.Errorf("%s: direct id %s, through the sidecar %s", name, res.DocID, docs["acme"][name])
			}
		}
		for _, q := range questions {
			for _, mode := range modes {
				want, got := query(t, direct, q, mode), query(t, through, q, mode)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s %q through the sidecar differs from the direct result:\n got %+v\nwant %+v", mode, q, got, want)
				}
			}
		}
	})

	t.Run("idle connections", func(t *testing.T) {
		// pgxpool pings a connection idle for over a second (`-- ping`, an
		// empty simple query) before reusing it; the guard lets it through.
		time.Sleep(1200 * time.Millisecond)
		for _, tenant := range tenants {
			checkOwn(t, tenant, questions[0], query(t, engines[tenant], questions[0], ragcore.Naive), docs)
		}
	})

	t.Run("nothing ragcore sends is refused", func(t *testing.T) {
		// ragcore is the transparency yardstick: every command it sends
		// (docs/ragcore.md, "What the sidecar must support") is served.
		resp, err := http.Get("http://" + st.adminAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "tenantgate_refusals_total{") && !strings.HasSuffix(line, " 0") {
				t.Errorf("refused: %s", line)
			}
		}
		for _, p := range []string{"postgres", "redis", "mongo"} {
			if !strings.Contains(string(body), `tenantgate_requests_total{outcome="forwarded",protocol="`+p+`"}`) &&
				!strings.Contains(string(body), `tenantgate_requests_total{outcome="rewritten",protocol="`+p+`"}`) {
				t.Errorf("no %s requests went through the sidecar", p)
			}
		}
	})

	t.Run("delete keeps the other tenant's copy", func(t *testing.T) {
		if err := engines["acme"].Delete(ctx, shared); err != nil {
			t.Fatal(err)
		}
		q := "Logistics Alliance market forecast 2030"
		for _, mode := range modes {
			if res := query(t, engines["acme"], q, mode); slices.Contains(sourceIDs(res), shared) {
				t.Errorf("acme: %s query still finds the deleted %s: %v", mode, sharedDoc, res.Sources)
			}
		}
		res := query(t, engines["techstart"], q, ragcore.Hybrid)
		if !slices.Contains(sourceIDs(res), shared) {
			t.Errorf("techstart lost its copy of %s: sources %v", sharedDoc, res.Sources)
		}
		if res := query(t, engines["techstart"], q, ragcore.Naive); !slices.Contains(sourceIDs(res), shared) {
			t.Errorf("techstart lost the chunks of %s: sources %v", sharedDoc, res.Sources)
		}
		acmeLeft := maps.Clone(docs["acme"])
		delete(acmeLeft, sharedDoc)
		st.checkUpstream(t, map[string]map[string]string{"acme": acmeLeft, "techstart": docs["techstart"]},
			map[string][]string{shared: {"techstart"}})
	})
}

// stack is a fresh database made tenant-scoped, the shared Redis and
// MongoDB-wire servers, and a sidecar in front of them.
type stack struct {
	ownerURL, redisURL, mongoURL string
	dbName                       string
	keyPrefix                    string // ragcore's Redis key prefix, private to this run
	mongoDB                      string // ragcore's MongoDB database, private to this run
	pgAddr, redisAddr, mongoAddr string
	adminAddr                    string
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	st := &stack{
		ownerURL:  testutil.NewPostgresDB(t), // a superuser: the tables' owner
		redisURL:  testutil.RedisURL(t),
		mongoURL:  testutil.MongoURL(t),
		keyPrefix: testutil.UniqueName("ragcore_e2e_") + ":",
		mongoDB:   testutil.UniqueName("ragcoree2e"),
	}
	u, err := url.Parse(st.ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	st.dbName = strings.TrimPrefix(u.Path, "/")
	t.Cleanup(func() { st.cleanup(t) })

	// ragcore's plain single-tenant schema, applied by the owner.
	owner := ragcore.Settings{Postgres: st.ownerURL}
	kind, err := ragcore.ChooseKind(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	if err := ragcore.ApplySchema(ctx, owner, ragcore.Schema(kind, 256)); err != nil {
		t.Fatal(err)
	}

	// `tenantgate pg migrate --apply` on every table of it, as the owner;
	// then the proxy's own role: not the owner, NOBYPASSRLS, DML only.
	conn, err := pgx.Connect(ctx, st.ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT table_name::text FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 5 {
		t.Fatalf("ragcore's schema has tables %v, expected its 3 vector and 2 graph tables", tables)
	}
	// Hardened mode, as scripts/demo.sh runs it: the policies accept the
	// tenant setting only with the proxy's HMAC of it.
	signer, err := pgproxy.NewTenantSigner([]byte(signingKey), "app.tenant_sig")
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		stmts, err := pgproxy.PlanMigration(ctx, conn, pgproxy.MigrateOptions{Table: table, Signer: signer})
		if err != nil {
			t.Fatalf("migrate %s: %v", table, err)
		}
		if err := pgproxy.ApplyMigration(ctx, conn, stmts, signer); err != nil {
			t.Fatalf("migrate %s: %v", table, err)
		}
	}
	role := testutil.UniqueName("tenantgate_e2e_")
	for _, s := range []string{
		"CREATE ROLE " + role + " LOGIN NOSUPERUSER NOBYPASSRLS",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + role,
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t.Cleanup(func() { // after the sidecar has stopped (cleanups run last first)
		c, err := pgx.Connect(context.Background(), st.ownerURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP OWNED BY "+role)
		_, _ = c.Exec(context.Background(), "DROP ROLE "+role)
	})
	u.User = url.User(role)
	upstream := u.String()

	st.pgAddr, st.redisAddr, st.mongoAddr = freeAddr(t), freeAddr(t), freeAddr(t)
	st.adminAddr = startSidecar(t, fmt.Sprintf(`
jwt: {secret: %s}
tenants: [{id: acme}, {id: techstart}, {id: third}]
admin: {listen: 127.0.0.1:0}
postgres: {listen: %q, upstream: %q, tenant_signature: {key: %q}}
redis: {listen: %q, upstream: %q}
mongo: {listen: %q, upstream: %q}
`, jwtSecret, st.pgAddr, upstream, signingKey, st.redisAddr, st.redisURL, st.mongoAddr, st.mongoURL))
	return st
}

// engine opens ragcore for tenant through the sidecar: the listeners'
// addresses and the tenant's token as the one credential, nothing else.
func (st *stack) engine(t *testing.T, tenant string) *ragcore.Engine {
	t.Helper()
	return open(t, st.settings(token(t, tenant)))
}

// settings point ragcore at the sidecar's listeners with credential.
func (st *stack) settings(credential string) ragcore.Settings {
	return ragcore.Settings{
		Postgres:   "postgres://ragcore@" + st.pgAddr + "/" + st.dbName + "?sslmode=disable",
		Redis:      "redis://" + st.redisAddr + "/0",
		Mongo:      "mongodb://" + st.mongoAddr + "/" + st.mongoDB,
		Credential: credential,
		KeyPrefix:  st.keyPrefix,
		Logger:     discard,
	}
}

func token(t *testing.T, tenant string) string {
	t.Helper()
	tok, err := policy.MintHS256([]byte(jwtSecret), "tenant_id", tenant, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// checkUpstream looks at the stores behind the sidecar with their own
// credentials: each tenant's documents, chunks and statuses are stored
// under that tenant, and nothing is stored unscoped. owners lists, for a
// document id, the tenants whose chunk rows it must have.
func (st *stack) checkUpstream(t *testing.T, docs map[string]map[string]string, owners map[string][]string) {
	t.Helper()
	ctx := context.Background()

	// PostgreSQL: every row carries a tenant; chunks of a document belong
	// to exactly the tenants that ingested it.
	conn, err := pgx.Connect(ctx, st.ownerURL) // superuser: sees every tenant's rows
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, table := range []string{"ragcore_chunk_vectors", "ragcore_entity_vectors", "ragcore_relation_vectors", "ragcore_entities", "ragcore_relations"} {
		rows, _ := conn.Query(ctx, "SELECT DISTINCT tenant_id FROM "+table+" ORDER BY 1")
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tenants) {
			t.Errorf("postgres %s: rows of tenants %v, want %v", table, got, tenants)
		}
	}
	for _, tenant := range tenants {
		for name, id := range docs[tenant] {
			want := []string{tenant}
			if o, ok := owners[id]; ok {
				want = o
			}
			rows, _ := conn.Query(ctx, "SELECT DISTINCT tenant_id FROM ragcore_chunk_vectors WHERE ref = $1 ORDER BY 1", id)
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("postgres: chunk rows of %s's %s belong to %v, want %v", tenant, name, got, want)
			}
		}
	}
	// An entity named in both corpora is stored once per tenant; a secret
	// project's only under its tenant.
	for name, want := range map[string][]string{"Orion Platform": tenants, "Project Falcon": {"acme"}, "Project Heron": {"techstart"}} {
		rows, _ := conn.Query(ctx, "SELECT tenant_id FROM ragcore_entities WHERE name = $1 ORDER BY 1", name)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("postgres: entity %q stored for %v, want %v", name, got, want)
		}
	}

	// Redis: the tenant prefix t:<tenant>: before ragcore's own keys.
	opt, err := goredis.ParseURL(st.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(opt)
	defer rc.Close()
	scan := func(pattern string) []string {
		keys, err := scanKeys(ctx, rc, pattern)
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	if keys := scan(st.keyPrefix + "*"); len(keys) != 0 {
		t.Errorf("redis: unscoped keys %v", keys)
	}
	if keys := scan("t:third:" + st.keyPrefix + "*"); len(keys) != 0 {
		t.Errorf("redis: keys of the third tenant %v", keys)
	}
	for _, tenant := range tenants {
		var want []string
		for _, id := range docs[tenant] {
			want = append(want, "t:"+tenant+":"+st.keyPrefix+"doc:"+id)
		}
		sort.Strings(want)
		if got := scan("t:" + tenant + ":" + st.keyPrefix + "doc:*"); !slices.Equal(got, want) {
			t.Errorf("redis: %s's document keys %v, want %v", tenant, got, want)
		}
		if n := len(scan("t:" + tenant + ":" + st.keyPrefix + "chunk:*")); n == 0 {
			t.Errorf("redis: no chunk keys under t:%s:", tenant)
		}
	}

	// MongoDB (database mode): <db>__<tenant>.
	mc, err := mongo.Connect(options.Client().ApplyURI(st.mongoURL))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mc.Disconnect(ctx) }()
	statusIDsIn := func(db string) []string {
		cur, err := mc.Database(db).Collection("doc_status").Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		var out []struct {
			ID string `bson:"_id"`
		}
		if err := cur.All(ctx, &out); err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(out))
		for i, d := range out {
			ids[i] = d.ID
		}
		sort.Strings(ids)
		return ids
	}
	for _, tenant := range tenants {
		if got, want := statusIDsIn(st.mongoDB+"__"+tenant), sortedValues(docs[tenant]); !slices.Equal(got, want) {
			t.Errorf("mongo: %s__%s holds %v, want %v", st.mongoDB, tenant, got, want)
		}
	}
	for _, db := range []string{st.mongoDB, st.mongoDB + "__third"} {
		if got := statusIDsIn(db); len(got) != 0 {
			t.Errorf("mongo: %s holds %v, want nothing", db, got)
		}
	}
}

func (st *stack) cleanup(t *testing.T) {
	ctx := context.Background()
	if opt, err := goredis.ParseURL(st.redisURL); err == nil {
		rc := goredis.NewClient(opt)
		for _, tenant := range []string{"acme", "techstart", "third"} {
			keys, _ := scanKeys(ctx, rc, "t:"+tenant+":"+st.keyPrefix+"*")
			if len(keys) > 0 {
				rc.Del(ctx, keys...)
			}
		}
		_ = rc.Close()
	}
	if mc, err := mongo.Connect(options.Client().ApplyURI(st.mongoURL)); err == nil {
		for _, suffix := range []string{"", "__acme", "__techstart", "__third"} {
			if err := mc.Database(st.mongoDB + suffix).Drop(ctx); err != nil {
				t.Logf("drop %s%s: %v", st.mongoDB, suffix, err)
			}
		}
		_ = mc.Disconnect(ctx)
	}
}

// directEngine opens ragcore directly on fresh, private stores: a new
// database with the plain schema, a Redis key prefix and a Mongo database.
func directEngine(t *testing.T) *ragcore.Engine {
	t.Helper()
	ctx := context.Background()
	s := ragcore.Settings{
		Postgres:  testutil.NewPostgresDB(t),
		Redis:     testutil.RedisURL(t),
		KeyPrefix: testutil.UniqueName("ragcore_e2e_direct_") + ":",
	}
	mu, err := url.Parse(testutil.MongoURL(t))
	if err != nil {
		t.Fatal(err)
	}
	db := testutil.UniqueName("ragcoredirect")
	mu.Path = "/" + db
	s.Mongo = mu.String()
	kind, err := ragcore.ChooseKind(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := ragcore.ApplySchema(ctx, s, ragcore.Schema(kind, 256)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		opt, _ := goredis.ParseURL(s.Redis)
		rc := goredis.NewClient(opt)
		if keys, _ := scanKeys(ctx, rc, s.KeyPrefix+"*"); len(keys) > 0 {
			rc.Del(ctx, keys...)
		}
		_ = rc.Close()
		if mc, err := mongo.Connect(options.Client().ApplyURI(s.Mongo)); err == nil {
			_ = mc.Database(db).Drop(ctx)
			_ = mc.Disconnect(ctx)
		}
	})
	return open(t, s)
}

func open(t *testing.T, s ragcore.Settings) *ragcore.Engine {
	t.Helper()
	s.Logger = discard
	e, err := ragcore.Open(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// ingestCorpus queues and ingests the shipped corpus of name, as `ragcore
// ingest` does, and returns its doc ids by file name.
func ingestCorpus(t *testing.T, e *ragcore.Engine, name string) map[string]string {
	t.Helper()
	ctx := context.Background()
	files := readCorpus(t, name)
	for file, text := range files {
		if err := e.Queue(ctx, file, text); err != nil {
			t.Fatalf("%s: queue %s: %v", name, file, err)
		}
	}
	ids := map[string]string{}
	for file, text := range files {
		res, err := e.Ingest(ctx, file, text)
		if err != nil {
			t.Fatalf("%s: ingest %s: %v", name, file, err)
		}
		if res.Unchanged || res.Chunks == 0 || res.Entities == 0 {
			t.Errorf("%s: ingest %s: %+v, want a fresh document with chunks and entities", name, file, res)
		}
		ids[file] = res.DocID
	}
	return ids
}

func readCorpus(t *testing.T, name string) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "ragcore", "testdata", "corpus", name, "*.md"))
	if err != nil || len(paths) != 3 {
		t.Fatalf("corpus %s: %v, %v", name, paths, err)
	}
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = string(b)
	}
	return out
}

// call sends an API request with bearer and decodes the JSON answer into out.
func call(t *testing.T, base, bearer, method, path string, body, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

func query(t *testing.T, e *ragcore.Engine, q string, mode ragcore.Mode) ragcore.Result {
	t.Helper()
	res, err := e.Query(context.Background(), q, mode)
	if err != nil {
		t.Fatalf("%s %q: %v", mode, q, err)
	}
	return res
}

// checkOwn fails when a result of tenant's draws on anything not its own:
// a source or chunk outside its documents, or the other tenant's secret
// anywhere in the retrieved context.
func checkOwn(t *testing.T, tenant, q string, res ragcore.Result, docs map[string]map[string]string) {
	t.Helper()
	own := sortedValues(docs[tenant])
	theirs := secrets[other(tenant)]
	if len(res.Sources) == 0 {
		t.Errorf("%s: %s %q found nothing", tenant, res.Mode, q)
	}
	for _, s := range res.Sources {
		if !slices.Contains(own, s.DocID) {
			t.Errorf("%s: %s %q cites %s (%s), not one of its documents", tenant, res.Mode, q, s.DocID, s.Name)
		} else if docs[tenant][s.Name] != s.DocID {
			t.Errorf("%s: %s %q cites %s as %q, not the name it gave it", tenant, res.Mode, q, s.DocID, s.Name)
		}
	}
	for _, c := range res.Chunks {
		if !slices.Contains(own, c.DocID) {
			t.Errorf("%s: %s %q retrieved chunk %s of %s, not one of its documents", tenant, res.Mode, q, c.ID, c.DocID)
		}
	}
	for _, e := range res.Entities {
		if strings.Contains(e.Name+e.Description, theirs) {
			t.Errorf("%s: %s %q saw entity %q of %s", tenant, res.Mode, q, e.Name, other(tenant))
		}
	}
	if strings.Contains(res.Context, theirs) {
		t.Errorf("%s: %s %q saw %s's secret %s:\n%s", tenant, res.Mode, q, other(tenant), theirs, res.Context)
	}
}

func sourceIDs(res ragcore.Result) []string {
	ids := make([]string, len(res.Sources))
	for i, s := range res.Sources {
		ids[i] = s.DocID
	}
	return ids
}

func statusIDs(list []status.Doc) []string {
	var ids []string
	for _, d := range list {
		ids = append(ids, d.ID)
	}
	sort.Strings(ids)
	return ids
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func scanKeys(ctx context.Context, rc *goredis.Client, pattern string) ([]string, error) {
	var keys []string
	iter := rc.Scan(ctx, 0, pattern, 500).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	sort.Strings(keys)
	return keys, iter.Err()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startSidecar runs the sidecar configured by yaml until the test ends, as
// `tenantgate run` would, and returns its admin address.
func startSidecar(t *testing.T, yaml string) string {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sc, err := sidecar.New(ctx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sidecar: %v", err)
		}
	})
	return sc.AdminAddr()
}
