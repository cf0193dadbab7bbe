package pg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tenantgate/tenantgate/proxy"
)

var errPoolTimeout = errors.New("no server connection became free in time")

// PoolOptions configures a Pool.
type PoolOptions struct {
	Upstream       string // the proxy's own credentials
	Size           int
	MaxLifetime    time.Duration
	ConnectTimeout time.Duration
	WaitTimeout    time.Duration // how long a client waits for a free connection
	ResetTimeout   time.Duration
	MinIdle        int           // idle connections kept open ahead of use
	HealthInterval time.Duration // how often idle connections are checked, default 30s
	Metrics        *proxy.Metrics
	Log            *slog.Logger
}

// Pool owns the upstream connections. A client holds one from Get until its
// transaction (transaction pooling) or its session ends. At most Size exist;
// a client that finds none free waits up to WaitTimeout.
type Pool struct {
	opts   PoolOptions
	config *pgconn.Config
	tokens chan struct{} // one per connection held by a client
	known  *preparedSet
	// freed, when set (before the pool is used), is called whenever a slot
	// becomes free: an event loop's clients may be waiting for one.
	freed func()
	// yield, when set, is called when a client starts waiting for a slot:
	// an event loop keeping idle connections (each holding a slot) gives
	// them back.
	yield       func()
	slotWaiters atomic.Int32
	loopIdle    atomic.Int32 // idle connections an event loop keeps
	// idleGauge and activeGauge are the pool's series of
	// tenantgate_upstream_connections; nil without metrics.
	idleGauge, activeGauge prometheus.Gauge

	mu     sync.Mutex
	idle   []*ServerConn
	params map[string]string // ParameterStatus of the last connection made
	closed bool

	stop chan struct{} // closed by Close: ends maintain
}

// NewPool checks opts.Upstream; it connects lazily.
func NewPool(opts PoolOptions) (*Pool, error) {
	cfg, err := pgconn.ParseConfig(opts.Upstream)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	if opts.ConnectTimeout > 0 {
		cfg.ConnectTimeout = opts.ConnectTimeout
	}
	if opts.ResetTimeout <= 0 {
		opts.ResetTimeout = 5 * time.Second
	}
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = 30 * time.Second
	}
	p := &Pool{opts: opts, config: cfg, tokens: make(chan struct{}, opts.Size),
		known: newPreparedSet(), stop: make(chan struct{})}
	if opts.Metrics != nil {
		p.idleGauge = opts.Metrics.UpstreamConnectionsGauge("postgres", "idle")
		p.activeGauge = opts.Metrics.UpstreamConnectionsGauge("postgres", "active")
	}
	go p.maintain()
	return p, nil
}

// maintain checks the idle connections every HealthInterval: those that fail
// a round trip or outlived MaxLifetime are closed, and new ones are opened
// up to MinIdle.
func (p *Pool) maintain() {
	t := time.NewTicker(p.opts.HealthInterval)
	defer t.Stop()
	for {
		p.topUp()
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		n := len(p.idle)
		p.mu.Unlock()
		for range n {
			if !p.checkOldestIdle() {
				break
			}
		}
		p.report()
	}
}

// checkOldestIdle takes the longest idle connection, holding a connection
// slot like a client would (so the pool never exceeds Size), and puts it
// back if it is healthy. It reports false when no slot or no idle
// connection was free.
func (p *Pool) checkOldestIdle() bool {
	select {
	case p.tokens <- struct{}{}:
	default:
		return false
	}
	p.mu.Lock()
	if len(p.idle) == 0 {
		p.mu.Unlock()
		<-p.tokens
		return false
	}
	c := p.idle[0]
	p.idle = p.idle[1:]
	p.mu.Unlock()
	if c.servedBy() != nil && c.toRuntime() != nil {
		p.discard(c)
		return true
	}
	if p.expired(c) || c.exec(";", p.opts.ResetTimeout) != nil {
		p.discard(c)
		return true
	}
	p.put(c)
	return true
}

// topUp opens connections until MinIdle are idle (in the pool or kept by
// the event loop), without waiting for a connection slot.
func (p *Pool) topUp() {
	for {
		p.mu.Lock()
		short := !p.closed && len(p.idle)+int(p.loopIdle.Load()) < p.opts.MinIdle
		p.mu.Unlock()
		if !short {
			return
		}
		select {
		case p.tokens <- struct{}{}:
		default:
			return // every slot is in use
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.config.ConnectTimeout+time.Second)
		c, err := p.dial(ctx)
		cancel()
		if err != nil {
			<-p.tokens
			p.opts.Log.Warn("postgres: opening an idle connection failed", "err", err)
			return
		}
		p.put(c)
	}
}

// Get returns a connection for the caller's exclusive use, preferring one
// that last served tenant (it needs no tenant switch).
func (p *Pool) Get(ctx context.Context, tenant string) (*ServerConn, error) {
	// A free slot is the common case (every transaction of every client
	// comes here): take it without arming a timer.
	select {
	case p.tokens <- struct{}{}:
	default:
		if err := p.waitSlot(ctx); err != nil {
			return nil, err
		}
	}
	for {
		c := p.takeIdle(tenant)
		if c == nil {
			break
		}
		if c.servedBy() != nil {
			if err := c.toRuntime(); err != nil {
				c.close()
				continue
			}
		}
		p.report()
		return c, nil
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.tokens
		p.report()
		return nil, err
	}
	p.report()
	return c, nil
}

// tryGet is Get for an event loop, which must not wait: a healthy idle
// connection when a slot is free. Without one it reports whether a slot
// was free (a connection must be dialled, which the caller leaves to a
// session goroutine) or not (the caller waits for a release).
func (p *Pool) tryGet(tenant string) (c *ServerConn, slotFree bool) {
	select {
	case p.tokens <- struct{}{}:
	default:
		return nil, false
	}
	if c = p.takeIdle(tenant); c == nil {
		<-p.tokens
		return nil, true
	}
	p.report()
	return c, true
}

// preferTenant is the index of the most recently idle of conns (not empty)
// that last served tenant, or of the most recently idle one.
func preferTenant(conns []*ServerConn, tenant string) int {
	for j := len(conns) - 1; j >= 0; j-- {
		if conns[j].servedTenant() == tenant {
			return j
		}
	}
	return len(conns) - 1
}

// takeIdle takes a healthy idle connection, preferring one that last served
// tenant; nil when none is idle. The caller holds a slot.
func (p *Pool) takeIdle(tenant string) *ServerConn {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		i := preferTenant(p.idle, tenant)
		c := p.idle[i]
		p.idle = slices.Delete(p.idle, i, i+1)
		p.mu.Unlock()
		if c.isBroken() || p.expired(c) || !c.idleHealthy() {
			c.close()
			continue
		}
		return c
	}
}

// waitSlot waits up to WaitTimeout for a connection slot.
func (p *Pool) waitSlot(ctx context.Context) error {
	p.slotWaiters.Add(1)
	defer p.slotWaiters.Add(-1)
	if p.yield != nil {
		p.yield()
	}
	timer := time.NewTimer(p.opts.WaitTimeout)
	defer timer.Stop()
	select {
	case p.tokens <- struct{}{}:
		return nil
	case <-timer.C:
		return fmt.Errorf("%w: all %d are busy after waiting %s (postgres.pool_size, postgres.pool_timeout)",
			errPoolTimeout, p.opts.Size, p.opts.WaitTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Pool) expired(c *ServerConn) bool { return p.expiredAt(c, time.Now()) }

// expiredAt is expired at the time now, for the event loop, which reads
// the clock once per round.
func (p *Pool) expiredAt(c *ServerConn, now time.Time) bool {
	return p.opts.MaxLifetime > 0 && now.Sub(c.created) > p.opts.MaxLifetime
}

func (p *Pool) dial(ctx context.Context) (*ServerConn, error) {
	pc, err := pgconn.ConnectConfig(ctx, p.config)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the database server: %w", err)
	}
	h, err := pc.Hijack()
	if err != nil {
		_ = pc.Close(ctx)
		return nil, err
	}
	p.mu.Lock()
	p.params = h.ParameterStatuses
	p.mu.Unlock()
	return newServerConn(h.Conn, h.PID, h.SecretKey, p.put, p.known), nil
}

// put takes back a connection whose client let go of it in a clean state.
func (p *Pool) put(c *ServerConn) {
	p.mu.Lock()
	if p.closed || c.isBroken() || p.expired(c) {
		p.mu.Unlock()
		c.close()
	} else {
		p.idle = append(p.idle, c)
		p.mu.Unlock()
	}
	<-p.tokens
	p.slotFreed()
}

// slotFreed reports a free slot and the pool's state.
func (p *Pool) slotFreed() {
	if p.freed != nil {
		p.freed()
	}
	p.report()
}

// putDirty takes back a connection after resetting it: rolled back, and its
// session state discarded when dirty. A connection that fails to reset is
// closed.
func (p *Pool) putDirty(c *ServerConn, dirty bool) {
	if err := c.reset(dirty, p.opts.ResetTimeout); err != nil {
		p.opts.Log.Warn("postgres: closing a server connection that could not be reset", "err", err)
		c.close()
		c.mu.Lock()
		c.broken = err
		c.mu.Unlock()
	}
	p.put(c)
}

// discard closes a connection whose state is unknown.
func (p *Pool) discard(c *ServerConn) {
	c.close()
	<-p.tokens
	p.slotFreed()
}

// ServerParams returns the ParameterStatus values of the server, connecting
// once if none is known yet.
func (p *Pool) ServerParams(ctx context.Context) (map[string]string, error) {
	p.mu.Lock()
	params := p.params
	p.mu.Unlock()
	if params != nil {
		return params, nil
	}
	c, err := p.Get(ctx, "")
	if err != nil {
		return nil, err
	}
	p.put(c)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.params, nil
}

func (p *Pool) report() {
	if p.idleGauge == nil {
		return
	}
	p.mu.Lock()
	idle := len(p.idle)
	p.mu.Unlock()
	kept := int(p.loopIdle.Load()) // idle, but holding slots
	p.idleGauge.Set(float64(idle + kept))
	p.activeGauge.Set(float64(len(p.tokens) - kept))
}

// Close closes the idle connections; held ones close when returned.
func (p *Pool) Close() {
	p.mu.Lock()
	if !p.closed {
		close(p.stop)
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
	p.report()
}
