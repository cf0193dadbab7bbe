package pg

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantgate/tenantgate/proxy"
)

// Options configure an Engine.
type Options struct {
	Upstream       string   // URL with the proxy's own credentials
	Databases      []string // database names clients may ask for; default the upstream's
	RequireTLS     bool
	SessionPooling bool // pool_mode: session; default transaction
	PoolSize       int
	MinIdle        int
	MaxLifetime    time.Duration
	ConnectTimeout time.Duration
	PoolTimeout    time.Duration
	HealthInterval time.Duration // how often idle upstream connections are checked, default 30s
	TenantSetting  string        // default app.tenant_id
	Signer         *TenantSigner // hardened mode: also set the tenant's signature (signature.go)
	AllowDDL       bool
	CacheSize      int // statement verdicts kept, default 10000
	// NoEventLoop serves every session from its own goroutine; by default
	// (Linux, transaction pooling, plaintext upstream) an event loop serves
	// the sessions between and during their transactions (loop_linux.go).
	NoEventLoop bool
	Metrics     *proxy.Metrics
	Log         *slog.Logger
}

// allowedStartupParams are the startup parameters a client may set; they
// are applied on every server connection it gets. Anything else is refused,
// options above all (it can carry -c app.tenant_id=...).
var allowedStartupParams = []string{
	"application_name", "client_encoding", "datestyle", "timezone", "intervalstyle",
	"extra_float_digits", "search_path", "standard_conforming_strings", "bytea_output",
	"lc_monetary", "lc_numeric", "lc_time", "statement_timeout", "lock_timeout",
	"idle_in_transaction_session_timeout", "default_transaction_isolation",
	"default_transaction_read_only", "geqo", "jit",
}

// Engine is the PostgreSQL protocol engine: it authenticates clients with
// their JWT as password, guards every statement, and runs them on pooled
// upstream connections that hold the client's tenant.
type Engine struct {
	opts    Options
	pool    *Pool
	cache   *StatementCache
	allowed map[string]bool
	loop    *eventLoop // nil: every session is served by its goroutine

	cancelMu sync.Mutex
	cancels  map[cancelKey]*clientSession

	catalogMu sync.Mutex
	catalog   *pgconn.PgConn // for CREATE ... IF NOT EXISTS lookups
}

// New returns an engine; it connects to the upstream lazily.
func New(opts Options) (*Engine, error) {
	if opts.TenantSetting == "" {
		opts.TenantSetting = "app.tenant_id"
	}
	if opts.PoolSize <= 0 {
		opts.PoolSize = 20
	}
	if opts.PoolTimeout <= 0 {
		opts.PoolTimeout = 5 * time.Second
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 10000
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	pool, err := NewPool(PoolOptions{
		Upstream: opts.Upstream, Size: opts.PoolSize, MaxLifetime: opts.MaxLifetime,
		ConnectTimeout: opts.ConnectTimeout, WaitTimeout: opts.PoolTimeout, MinIdle: opts.MinIdle,
		HealthInterval: opts.HealthInterval, Metrics: opts.Metrics, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	if len(opts.Databases) == 0 {
		opts.Databases = []string{pool.config.Database}
	}
	guard := NewGuard(GuardOptions{TenantSetting: opts.TenantSetting, TransactionMode: !opts.SessionPooling, AllowDDL: opts.AllowDDL})
	e := &Engine{opts: opts, pool: pool, cache: NewStatementCache(guard, opts.CacheSize),
		allowed: map[string]bool{}, cancels: map[cancelKey]*clientSession{}}
	for _, p := range allowedStartupParams {
		e.allowed[p] = true
	}
	if !opts.SessionPooling && !opts.NoEventLoop && !upstreamMayUseTLS(pool.config) {
		if e.loop = newEventLoop(e); e.loop != nil {
			pool.freed, pool.yield = e.loop.poolFreed, e.loop.poolWanted
		}
	}
	return e, nil
}

// upstreamMayUseTLS reports whether server connections may be TLS, whose
// bytes the Go runtime must carry: the event loop serves only plain sockets.
func upstreamMayUseTLS(cfg *pgconn.Config) bool {
	if cfg.TLSConfig != nil {
		return true
	}
	for _, f := range cfg.Fallbacks {
		if f.TLSConfig != nil {
			return true
		}
	}
	return false
}

// Close closes the pool's idle connections.
func (e *Engine) Close() {
	if e.loop != nil {
		e.loop.close()
	}
	e.pool.Close()
	e.catalogMu.Lock()
	if e.catalog != nil {
		_ = e.catalog.Close(context.Background())
	}
	e.catalogMu.Unlock()
}

// Serve handles one client connection.
func (e *Engine) Serve(s *proxy.Session) error {
	st, err := e.startup(s)
	if err != nil || st == nil {
		return err
	}
	c := &clientSession{
		e: e, s: s, rd: st.rd, tenant: s.Tenant(), params: st.params, paramsKey: paramsKey(st.params), req: s.Requests(),
		w: bufio.NewWriterSize(s.Conn(), 32<<10), stmts: map[string]*clientStmt{}, portals: map[string]*Verdict{},
		transactionPooling: !e.opts.SessionPooling,
	}
	if e.opts.Signer != nil {
		c.signature = e.opts.Signer.Sign(c.tenant)
	}
	key := e.register(c)
	defer e.unregister(key)
	c.write(st.greeting(key), true)
	err = c.serve()
	if errors.Is(err, proxy.ErrShuttingDown) {
		c.write(fatal("57P01", "tenantgate: the proxy is shutting down").encode(nil), true)
	}
	return err
}

// connConfig is a pgx configuration with the proxy's upstream credentials.
func (e *Engine) connConfig() *pgx.ConnConfig {
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		panic(err) // an empty DSN always parses
	}
	cfg.Config = *e.pool.config.Copy()
	return cfg
}
