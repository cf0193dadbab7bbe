package bolt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tenantgate/tenantgate/proxy"
	"github.com/tenantgate/tenantgate/proxy/bolt/cypher"
)

// Options configure the engine.
type Options struct {
	Upstream string // bolt://host:port, bolt+s:// (TLS) or bolt+ssc:// (TLS, unverified); neo4j:// alike, direct
	Username string // the proxy's own upstream credentials (basic auth)
	Password string
	Database string // the only database clients may use; "" = the upstream's home database
	// Mode is "label" (the default: one shared database, every node
	// pattern labelled) or "database" (a database per tenant, named by
	// DatabaseTemplate, set as db on BEGIN, RUN and ROUTE; statements are
	// checked but not labelled).
	Mode             string
	LabelTemplate    string // label mode; default "Tenant_{tenant}"
	DatabaseTemplate string // database mode; default "tenant-{tenant}"
	Advertise        string // host:port that ROUTE replies give to drivers
	// Procedures is the CALL allowlist; nil means cypher.DefaultProcedures.
	Procedures []cypher.Procedure
	// AllowSchema lets index and constraint commands through, for
	// operator tooling; other administration commands stay refused.
	AllowSchema    bool
	MaxMessageSize int           // default 16 MiB
	DialTimeout    time.Duration // default 10 s
	Log            *slog.Logger
}

// DefaultLabelTemplate is the tenant label unless configured.
const DefaultLabelTemplate = "Tenant_{tenant}"

const (
	defaultMaxMessage  = 16 << 20
	defaultDialTimeout = 10 * time.Second
	rewriteCacheSize   = 4096
	maxCachedQuery     = 16 << 10 // longer statements are rewritten every time
)

// Engine is the Bolt protocol engine: one per listener, shared by its
// sessions.
type Engine struct {
	upstream    upstream
	username    string
	password    string
	database    string
	perTenant   bool          // database mode
	databases   databaseNamer // database mode
	advertise   string
	rewriter    *cypher.Rewriter
	maxMessage  int
	dialTimeout time.Duration
	log         *slog.Logger
	cache       rewriteCache
}

// New validates opts. The upstream is dialled per client session, after
// the client's handshake, so that versions can be negotiated end to end.
func New(opts Options) (*Engine, error) {
	var namer databaseNamer
	switch opts.Mode {
	case "", "label":
	case "database":
		template := opts.DatabaseTemplate
		if template == "" {
			template = DefaultDatabaseTemplate
		}
		var err error
		if namer, err = newDatabaseNamer(template); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("bolt.mode %q: use label or database", opts.Mode)
	}
	up, err := parseUpstream(opts.Upstream)
	if err != nil {
		return nil, err
	}
	if opts.Advertise == "" {
		return nil, errors.New("bolt.advertise (or bolt.listen) must give the address drivers reach the proxy at")
	}
	if _, _, err := net.SplitHostPort(opts.Advertise); err != nil {
		return nil, fmt.Errorf("bolt.advertise %q: %w", opts.Advertise, err)
	}
	procedures := opts.Procedures
	if procedures == nil {
		procedures = cypher.DefaultProcedures
	}
	for _, p := range procedures {
		if p.Name == "" {
			return nil, errors.New("bolt.procedures: an empty procedure name")
		}
	}
	var rw *cypher.Rewriter
	if opts.Mode == "database" {
		rw = cypher.NewChecker(procedures, cypher.AllowSchema(opts.AllowSchema))
	} else {
		template := opts.LabelTemplate
		if template == "" {
			template = DefaultLabelTemplate
		}
		var err error
		if rw, err = cypher.NewRewriter(template, procedures, cypher.AllowSchema(opts.AllowSchema)); err != nil {
			return nil, fmt.Errorf("bolt.label_template: %w", err)
		}
	}
	e := &Engine{
		upstream: up, username: opts.Username, password: opts.Password, database: opts.Database,
		perTenant: opts.Mode == "database", databases: namer,
		advertise: opts.Advertise, rewriter: rw, maxMessage: opts.MaxMessageSize, dialTimeout: opts.DialTimeout,
		log: opts.Log, cache: rewriteCache{entries: map[string]rewriteResult{}},
	}
	if e.username == "" && up.username != "" {
		e.username, e.password = up.username, up.password
	}
	if e.maxMessage <= 0 {
		e.maxMessage = defaultMaxMessage
	}
	if e.dialTimeout <= 0 {
		e.dialTimeout = defaultDialTimeout
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e, nil
}

// NodeProcedures is an allowlist of procedures that return nodes in their
// "node" field (like the default ones), for names from the configuration;
// nil stays nil (the default allowlist).
func NodeProcedures(names []string) []cypher.Procedure {
	if names == nil {
		return nil
	}
	out := make([]cypher.Procedure, 0, len(names))
	for _, n := range names {
		out = append(out, cypher.Procedure{Name: n, NodeField: "node"})
	}
	return out
}

// Serve runs one client session until the client leaves or the session is
// closed.
func (e *Engine) Serve(s *proxy.Session) error {
	return newClientSession(e, s).serve()
}

// upstream is where the proxy connects.
type upstream struct {
	addr               string
	tls                *tls.Config
	username, password string
}

func parseUpstream(raw string) (upstream, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return upstream{}, fmt.Errorf("bolt.upstream %q: want bolt://host:port", redact(raw))
	}
	up := upstream{addr: u.Host}
	if u.Port() == "" {
		up.addr = net.JoinHostPort(u.Hostname(), "7687")
	}
	// neo4j:// schemes are accepted as a direct connection to that server:
	// the proxy does not follow a cluster's routing.
	switch u.Scheme {
	case "bolt", "neo4j":
	case "bolt+s", "neo4j+s":
		up.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	case "bolt+ssc", "neo4j+ssc":
		up.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} //nolint:gosec // the operator asked for self-signed
	default:
		return upstream{}, fmt.Errorf("bolt.upstream scheme %q: use bolt, bolt+s or bolt+ssc", u.Scheme)
	}
	if u.User != nil {
		up.username = u.User.Username()
		up.password, _ = u.User.Password()
	}
	return up, nil
}

func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		u.User = url.User(u.User.Username())
		return u.String()
	}
	if strings.Contains(raw, "@") {
		return "<redacted>"
	}
	return raw
}

func (e *Engine) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, e.dialTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.upstream.addr)
	if err != nil {
		return nil, fmt.Errorf("bolt upstream: %w", err)
	}
	if e.upstream.tls == nil {
		return conn, nil
	}
	tc := tls.Client(conn, e.upstream.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("bolt upstream TLS: %w", err)
	}
	return tc, nil
}

// rewriteResult is a cached rewrite: the query, or the refusal.
type rewriteResult struct {
	query string
	err   error
}

// rewriteCache memoises rewrites by label and statement text; apps send
// the same parameterised statements over and over. When full it is
// emptied, which bounds memory without bookkeeping.
type rewriteCache struct {
	mu      sync.Mutex
	entries map[string]rewriteResult
}

func (e *Engine) rewrite(query, tenant string) (string, error) {
	if len(query) > maxCachedQuery {
		return e.rewriter.Rewrite(query, tenant)
	}
	key := tenant + "\x00" + query
	e.cache.mu.Lock()
	r, ok := e.cache.entries[key]
	e.cache.mu.Unlock()
	if ok {
		return r.query, r.err
	}
	out, err := e.rewriter.Rewrite(query, tenant)
	e.cache.mu.Lock()
	if len(e.cache.entries) >= rewriteCacheSize {
		clear(e.cache.entries)
	}
	e.cache.entries[key] = rewriteResult{out, err}
	e.cache.mu.Unlock()
	return out, err
}
