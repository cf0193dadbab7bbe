package ragcore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/tenantgate/tenantgate/ragcore/chunk"
	"github.com/tenantgate/tenantgate/ragcore/llm"
	"github.com/tenantgate/tenantgate/ragcore/store/graph"
	"github.com/tenantgate/tenantgate/ragcore/store/kv"
	"github.com/tenantgate/tenantgate/ragcore/store/status"
	"github.com/tenantgate/tenantgate/ragcore/store/vector"
)

// Settings say where the datastores are and how to use them.
type Settings struct {
	Postgres string // postgres:// URL (required)
	Redis    string // redis:// URL (required)
	Mongo    string // mongodb:// URL (required); the path names the database, default "ragcore"
	Neo4j    string // neo4j:// or bolt:// URL; empty: the graph lives in PostgreSQL

	// Credential is the password for every store whose URL carries none:
	// Redis AUTH, PostgreSQL password, MongoDB PLAIN (authSource $external)
	// password, Neo4j bearer token (basic when the URL names a user).
	Credential string
	MongoUser  string // user name for MongoDB PLAIN; default "ragcore"
	KeyPrefix  string // Redis key prefix; default kv.DefaultPrefix

	LLM      LLMSettings
	Chunk    chunk.Options
	TopK     int
	Progress func(string)
	Logger   *slog.Logger // where Open says which graph store it uses; default slog.Default()
}

// LLMSettings configure an OpenAI-compatible endpoint. Without BaseURL the
// deterministic local embedder and extractor are used and no answer is
// generated.
type LLMSettings struct {
	BaseURL, APIKey       string
	ChatModel, EmbedModel string
	EmbedDims             int
	Extract               bool // extract entities with the chat model instead of locally
}

// Open connects to the stores of s and returns an engine over them. (Each
// store is assigned to st only once opened: a typed nil in an interface
// would defeat closeStores' nil checks.) The
// PostgreSQL schema must have been applied (see Schema and ApplySchema).
func Open(ctx context.Context, s Settings) (eng *Engine, err error) {
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	var st Stores
	defer func() {
		if err != nil {
			closeStores(st)
		}
	}()
	kvs, err := openRedis(s)
	if err != nil {
		return nil, err
	}
	st.KV = kvs
	db, err := openPostgres(ctx, s)
	if err != nil {
		return nil, err
	}
	kind, err := vector.Detect(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	st.Vectors = vector.NewPostgres(db, kind)
	if s.Neo4j == "" {
		log.Info("ragcore: no Neo4j configured: the knowledge graph is stored in PostgreSQL tables")
		st.Graph = graph.NewPostgres(db)
	} else {
		g, err := openNeo4j(ctx, s)
		if err != nil {
			return nil, err
		}
		st.Graph = g
		log.Info("ragcore: knowledge graph on Neo4j", "url", redact(s.Neo4j))
	}
	sts, err := openMongo(s)
	if err != nil {
		return nil, err
	}
	st.Status = sts
	cfg := Config{Stores: st, Chunk: s.Chunk, TopK: s.TopK, Progress: s.Progress}
	if s.LLM.BaseURL != "" {
		client := &llm.Client{BaseURL: s.LLM.BaseURL, APIKey: s.LLM.APIKey, ChatModel: s.LLM.ChatModel,
			EmbedModel: s.LLM.EmbedModel, Dims: s.LLM.EmbedDims, Cache: kvCache{st.KV}}
		if s.LLM.EmbedModel != "" {
			cfg.Embedder = client
		}
		if s.LLM.ChatModel != "" {
			cfg.Chat = client
			if s.LLM.Extract {
				cfg.Extractor = llm.Extractor{Client: client}
			}
		}
	}
	return New(cfg)
}

// closeStores closes whichever stores are open. (The vector and graph
// stores on PostgreSQL share one pool; closing it twice is harmless.)
func closeStores(st Stores) error {
	ctx := context.Background()
	var errs []error
	if st.KV != nil {
		errs = append(errs, st.KV.Close())
	}
	if st.Vectors != nil {
		st.Vectors.Close()
	}
	if st.Graph != nil {
		errs = append(errs, st.Graph.Close(ctx))
	}
	if st.Status != nil {
		errs = append(errs, st.Status.Close(ctx))
	}
	return errors.Join(errs...)
}

// redisOptions parses a redis:// URL, adding the credential as the AUTH
// password when the URL has none.
func redisOptions(rawURL, credential string) (*redis.Options, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("ragcore: redis address: %w", err)
	}
	if opt.Password == "" {
		opt.Password = credential
	}
	opt.DisableIdentity = true // no CLIENT SETINFO: keep to plain commands
	// nor CLIENT MAINT_NOTIFICATIONS, which go-redis sends by default after a
	// RESP3 handshake (and which older servers and tenantgate refuse)
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return opt, nil
}

func openRedis(s Settings) (*kv.Redis, error) {
	if s.Redis == "" {
		return nil, errors.New("ragcore: no Redis address (RAGCORE_REDIS)")
	}
	opt, err := redisOptions(s.Redis, s.Credential)
	if err != nil {
		return nil, err
	}
	prefix := s.KeyPrefix
	if prefix == "" {
		prefix = kv.DefaultPrefix
	}
	return kv.NewRedis(redis.NewClient(opt), prefix)
}

// postgresConfig parses a PostgreSQL URL, adding the credential as the
// password when the URL has none.
func postgresConfig(rawURL, credential string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("ragcore: postgres address: %w", err)
	}
	if cfg.ConnConfig.Password == "" {
		cfg.ConnConfig.Password = credential
	}
	return cfg, nil
}

func openPostgres(ctx context.Context, s Settings) (*pgxpool.Pool, error) {
	if s.Postgres == "" {
		return nil, errors.New("ragcore: no PostgreSQL address (RAGCORE_POSTGRES)")
	}
	cfg, err := postgresConfig(s.Postgres, s.Credential)
	if err != nil {
		return nil, err
	}
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ragcore: postgres: %w", err)
	}
	return db, nil
}

// mongoOptions parses a mongodb:// URL and returns the client options and
// database name; a credential is used as the PLAIN password when the URL
// has no user.
func mongoOptions(rawURL, credential, user string) (*options.ClientOptions, string, error) {
	cs, err := connstring.ParseAndValidate(rawURL)
	if err != nil {
		return nil, "", fmt.Errorf("ragcore: mongo address: %w", err)
	}
	opt := options.Client().ApplyURI(rawURL)
	if cs.Username == "" && credential != "" {
		if user == "" {
			user = "ragcore"
		}
		opt.SetAuth(options.Credential{AuthMechanism: "PLAIN", AuthSource: "$external", Username: user, Password: credential})
	}
	db := cs.Database
	if db == "" {
		db = "ragcore"
	}
	return opt, db, nil
}

func openMongo(s Settings) (*status.Mongo, error) {
	if s.Mongo == "" {
		return nil, errors.New("ragcore: no MongoDB address (RAGCORE_MONGO)")
	}
	opt, db, err := mongoOptions(s.Mongo, s.Credential, s.MongoUser)
	if err != nil {
		return nil, err
	}
	client, err := mongo.Connect(opt)
	if err != nil {
		return nil, fmt.Errorf("ragcore: mongo: %w", err)
	}
	return status.NewMongo(client, db), nil
}

// neo4jTarget splits a Neo4j URL into the driver target (no user info) and
// the auth token: basic with the URL's user and password (or the
// credential as password), else bearer with the credential, else none.
func neo4jTarget(rawURL, credential string) (string, neo4j.AuthToken, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", neo4j.AuthToken{}, fmt.Errorf("ragcore: neo4j address: %w", err)
	}
	auth := neo4j.NoAuth()
	if u.User != nil {
		pass, ok := u.User.Password()
		if !ok {
			pass = credential
		}
		auth = neo4j.BasicAuth(u.User.Username(), pass, "")
	} else if credential != "" {
		auth = neo4j.BearerAuth(credential)
	}
	u.User = nil
	return u.String(), auth, nil
}

func openNeo4j(ctx context.Context, s Settings) (*graph.Neo4j, error) {
	target, auth, err := neo4jTarget(s.Neo4j, s.Credential)
	if err != nil {
		return nil, err
	}
	driver, err := neo4j.NewDriverWithContext(target, auth)
	if err != nil {
		return nil, fmt.Errorf("ragcore: neo4j: %w", err)
	}
	if err := driver.VerifyConnectivity(ctx); err != nil {
		driver.Close(ctx)
		return nil, fmt.Errorf("ragcore: neo4j: %w", err)
	}
	return graph.NewNeo4j(driver, ""), nil
}

// redact drops the password from a URL for logging.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// Schema returns ragcore's PostgreSQL schema: plain single-tenant tables
// keyed by content-hash ids.
func Schema(kind vector.Kind, dims int) []string {
	return append(vector.Schema(kind, dims), graph.Schema()...)
}

// ChooseKind returns pgvector when the server offers the extension, else array.
func ChooseKind(ctx context.Context, s Settings) (vector.Kind, error) {
	db, err := openPostgres(ctx, s)
	if err != nil {
		return "", err
	}
	defer db.Close()
	ok, err := vector.Available(ctx, db)
	if err != nil || !ok {
		return vector.Array, err
	}
	return vector.PGVector, nil
}

// ApplySchema runs the statements of Schema on s.Postgres.
func ApplySchema(ctx context.Context, s Settings, stmts []string) error {
	db, err := openPostgres(ctx, s)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, stmt := range stmts {
		if _, err := db.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("ragcore: apply schema: %s: %w", strings.SplitN(stmt, "\n", 2)[0], err)
		}
	}
	return nil
}

// kvCache is the llm.Cache in the KV store's cache namespace.
type kvCache struct{ kv kv.Store }

func (c kvCache) Get(ctx context.Context, key string) (string, bool, error) {
	vals, err := c.kv.Get(ctx, kv.Cache, key)
	if err != nil {
		return "", false, err
	}
	v, ok := vals[key]
	return v, ok, nil
}

func (c kvCache) Put(ctx context.Context, key, value string) error {
	return c.kv.Put(ctx, kv.Cache, map[string]string{key: value})
}
