package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenantgate/tenantgate/policy"
	"github.com/tenantgate/tenantgate/proxy"
)

// Options configure the engine.
type Options struct {
	Upstream  string // redis://, rediss:// or unix:// URL with the proxy's own credentials
	KeyPrefix string // template containing {tenant}; DefaultKeyPrefix when empty
	RateLimit *RateLimit
	// UpstreamConnections is how many upstream connections per protocol
	// version (RESP2, RESP3) the sessions share; 0 means
	// DefaultUpstreamConnections.
	UpstreamConnections int
	// NoEventLoop serves every session from its own goroutine; by default
	// (Linux, plaintext upstream) event loops serve the sessions that need
	// only a shared connection (loop_linux.go).
	NoEventLoop bool
	Log         *slog.Logger
	// Metrics, when set, gets the number of shared and dedicated upstream
	// connections (tenantgate_upstream_connections{protocol="redis"}).
	Metrics *proxy.Metrics
}

// RateLimit is a per-tenant command rate limit.
type RateLimit struct {
	RequestsPerSecond int
	Burst             int    // 0: RequestsPerSecond
	Shared            string // optional Redis URL of a window shared by several sidecars
}

// rateLimitTenant fills a key prefix template's tenant slot for the shared
// rate limit's keys: '~' cannot start a tenant id, so no tenant can name
// a key under the result (t:~ratelimit:<tenant>:<window> by default).
const rateLimitTenant = "~ratelimit"

// Engine is the Redis protocol engine: one per listener, shared by its
// sessions.
type Engine struct {
	upstream upstreamConfig
	template string
	log      *slog.Logger
	rewriter atomic.Pointer[commandRewriter]
	limiter  *policy.RateLimiter // nil: no rate limit
	mux      *muxPool
	loops    []*eventLoop // none where epoll is not available
	conns    upstreamGauge

	mu     sync.Mutex // serialises command table reloads
	server string     // identity of the server the table was loaded from
}

// New connects to the upstream once to load its command table and key
// specs, which decide how every command is scoped.
func New(ctx context.Context, opts Options) (*Engine, error) {
	up, err := parseUpstream(opts.Upstream)
	if err != nil {
		return nil, err
	}
	template := opts.KeyPrefix
	if template == "" {
		template = DefaultKeyPrefix
	}
	if !strings.Contains(template, "{tenant}") {
		return nil, fmt.Errorf("redis.key_prefix %q must contain {tenant}", template)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := opts.UpstreamConnections
	if n == 0 {
		n = DefaultUpstreamConnections
	}
	if n < 0 {
		return nil, fmt.Errorf("redis.upstream_connections %d must be at least 1", n)
	}
	e := &Engine{upstream: up, template: template, log: log, conns: upstreamGauge{metrics: opts.Metrics}}
	e.conns.add(stateShared, 0)
	e.conns.add(stateDedicated, 0)
	e.mux = newMuxPool(e, n)
	u, err := up.dial(ctx, 2)
	if err != nil {
		return nil, err
	}
	defer u.conn.Close()
	if err := e.loadCommandTable(u); err != nil {
		return nil, err
	}

	if rl := opts.RateLimit; rl != nil {
		e.limiter, err = policy.NewRateLimiter(ctx, policy.RateLimitOptions{
			RequestsPerSecond: rl.RequestsPerSecond, Burst: rl.Burst, SharedURL: rl.Shared,
			KeyPrefix: strings.ReplaceAll(template, "{tenant}", rateLimitTenant), Log: log,
		})
		if err != nil {
			return nil, err
		}
	}
	if up.tls == nil && !opts.NoEventLoop {
		e.loops = newEventLoops(e, n)
	}
	return e, nil
}

// Close releases what the engine holds beyond its sessions (the shared
// upstream connections, the shared rate limit's connections). Call it after
// the listener has shut down.
func (e *Engine) Close() error {
	for _, l := range e.loops {
		l.close()
	}
	e.mux.close()
	if e.limiter != nil {
		e.limiter.Close()
	}
	return nil
}

// loadCommandTable loads the command table and key specs over u, unless
// they were already loaded from a server with u's version and modules. A
// session calls it with every new upstream connection, so a server that is
// upgraded or loads a module is noticed at the next connection.
func (e *Engine) loadCommandTable(u *upstream) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.server == u.server && e.rewriter.Load() != nil {
		return nil
	}
	_ = u.conn.SetDeadline(time.Now().Add(e.upstream.dialTimeout))
	defer func() { _ = u.conn.SetDeadline(time.Time{}) }()
	reply, err := u.roundTrip("COMMAND")
	if err != nil {
		return fmt.Errorf("load the upstream's COMMAND table: %w", err)
	}
	table, err := LoadKeySpecTable(reply)
	if err != nil {
		return fmt.Errorf("load the upstream's COMMAND table: %w", err)
	}
	if _, ok := table.commands["get"]; !ok {
		return errors.New("the upstream's COMMAND table lacks GET: not a Redis server?")
	}
	if e.server != "" {
		e.log.Info("the Redis upstream changed: reloaded its command table", "commands", len(table.commands))
	}
	e.rewriter.Store(newCommandRewriter(table, e.template, e.upstream.db))
	e.server = u.server
	return nil
}

// Serve runs one client session until the client leaves or the session is
// closed. (The listener turns a panic here into the end of this session.)
func (e *Engine) Serve(s *proxy.Session) error {
	return newClientSession(e, s).serve()
}

// Upstream connection states, the values of the metric's state label.
const (
	stateShared    = "shared"    // shared by sessions (muxLink)
	stateDedicated = "dedicated" // one session's own (replyPump)
)

// upstreamGauge counts the engine's open upstream connections by state and
// reports them to the metrics.
type upstreamGauge struct {
	metrics           *proxy.Metrics // nil: counted only
	shared, dedicated atomic.Int64
}

func (g *upstreamGauge) add(state string, delta int64) {
	n := &g.shared
	if state == stateDedicated {
		n = &g.dedicated
	}
	v := n.Add(delta)
	if g.metrics != nil {
		g.metrics.UpstreamConnections("redis", state, int(v))
	}
}
