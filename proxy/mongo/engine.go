package mongo

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tenantgate/tenantgate/proxy"
)

// Modes of tenant isolation.
const (
	ModeDatabase = "database"
	ModeField    = "field"
)

// Defaults of Options.
const (
	DefaultDatabaseTemplate = "{db}__{tenant}"
	DefaultTenantField      = "tenant_id"
	DefaultMaxMessageBytes  = 48_000_000
	minMaxMessage           = 1024
)

// Options configure the engine.
type Options struct {
	Upstream         string // mongodb://[user:password@]host:port[/?authSource=admin], the proxy's own connection
	Mode             string // ModeDatabase (default) or ModeField
	DatabaseTemplate string // database mode: DefaultDatabaseTemplate when empty
	TenantField      string // field mode: DefaultTenantField when empty
	MaxMessageBytes  int    // DefaultMaxMessageBytes when 0
	Log              *slog.Logger
	Metrics          *proxy.Metrics // optional: upstream connection gauge
}

// Engine is the MongoDB protocol engine: one per listener, shared by its
// sessions. Each client session gets its own upstream connection, opened
// after the client authenticates, so that request order, moreToCome and
// logical sessions need no multiplexing.
type Engine struct {
	upstream  upstreamConfig
	facts     serverFacts
	rewriter  *CommandRewriter
	maxMsg    int
	log       *slog.Logger
	metrics   *proxy.Metrics
	upstreams atomic.Int64 // open upstream connections
}

// Cursor table bounds: far more than the server keeps open by default, and
// longer than its 10-minute idle cursor timeout.
const (
	maxCursors = 1 << 20
	cursorTTL  = 30 * time.Minute
)

// New checks opts and asks the upstream for its limits and wire versions,
// which hello answers repeat.
func New(ctx context.Context, opts Options) (*Engine, error) {
	up, err := parseUpstream(opts.Upstream)
	if err != nil {
		return nil, err
	}
	maxMsg := opts.MaxMessageBytes
	if maxMsg == 0 {
		maxMsg = DefaultMaxMessageBytes
	}
	if maxMsg < minMaxMessage {
		return nil, fmt.Errorf("mongo.max_message_bytes %d is below %d", maxMsg, minMaxMessage)
	}
	var sc scoper
	switch opts.Mode {
	case ModeDatabase, "":
		template := opts.DatabaseTemplate
		if template == "" {
			template = DefaultDatabaseTemplate
		}
		namer, err := NewDatabaseNamer(template)
		if err != nil {
			return nil, err
		}
		sc = &databaseScoper{names: namer}
	case ModeField:
		field := opts.TenantField
		if field == "" {
			field = DefaultTenantField
		}
		if !validFieldName(field) {
			return nil, fmt.Errorf("mongo.tenant_field %q must be a plain top-level field name", field)
		}
		sc = &fieldScoper{field: field}
	default:
		return nil, fmt.Errorf("mongo.mode %q: want %q or %q", opts.Mode, ModeDatabase, ModeField)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, err := up.connect(ctx, maxMsg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.conn.SetDeadline(time.Now().Add(dialTimeout))
	if up.cred != nil {
		// Negotiate once; every session's connection then authenticates
		// with the same mechanism, without another hello.
		mechanism, err := up.cred.negotiate(conn)
		if err != nil {
			return nil, fmt.Errorf("mongo.upstream: %w", err)
		}
		cred := *up.cred
		cred.mechanism = mechanism
		up.cred = &cred
		if err := conn.authenticate(up.cred, mechanism); err != nil {
			return nil, fmt.Errorf("mongo.upstream: %w", err)
		}
		_ = conn.conn.SetDeadline(time.Now().Add(dialTimeout))
	}
	facts, err := learnServer(conn, maxMsg)
	if err != nil {
		return nil, fmt.Errorf("mongo.upstream: %w", err)
	}
	return &Engine{
		upstream: up, facts: facts, maxMsg: maxMsg, log: log, metrics: opts.Metrics,
		rewriter: &CommandRewriter{scoper: sc, cursors: NewCursorTable(maxCursors, cursorTTL)},
	}, nil
}

func validFieldName(f string) bool {
	if f == "" || f[0] == '$' {
		return false
	}
	for _, r := range f {
		if r == '.' || r == 0 {
			return false
		}
	}
	return true
}

// upstreamOpened counts upstream connections opened (1) or closed (-1).
// Every one is in use by its client session: state "active".
func (e *Engine) upstreamOpened(delta int64) {
	n := e.upstreams.Add(delta)
	if e.metrics != nil {
		e.metrics.UpstreamConnections("mongo", "active", int(n))
	}
}

// Serve runs one client session until the client leaves or the session is
// closed.
func (e *Engine) Serve(s *proxy.Session) error {
	return newClientSession(e, s).serve()
}
