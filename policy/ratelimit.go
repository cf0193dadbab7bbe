package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// Shared rate limit tuning. The hot path never talks to Redis: each process
// counts locally and settles its counts with Redis every sharedSyncInterval,
// in one pipeline for all its active tenants.
const (
	sharedSyncInterval = 100 * time.Millisecond
	sharedSyncTimeout  = time.Second
	// limiterSweepInterval is how often tenants without sessions whose
	// state equals a fresh limiter's are forgotten.
	limiterSweepInterval = time.Minute
)

// RateLimitOptions configure NewRateLimiter.
type RateLimitOptions struct {
	RequestsPerSecond int // sustained rate per tenant, at least 1
	Burst             int // bucket size; 0 means RequestsPerSecond
	// SharedURL, when set, is a Redis URL where the sidecars that share it
	// keep a sliding window per tenant, so that together they admit about
	// RequestsPerSecond per tenant, not that much each.
	SharedURL string
	// KeyPrefix starts the shared window's keys: KeyPrefix<tenant>:<window>.
	// It must be a prefix no tenant can write keys under.
	KeyPrefix string
	Log       *slog.Logger
}

// RateLimiter limits each tenant's requests: a token bucket per tenant in
// this process, shared by all the tenant's sessions, and optionally a
// sliding window in Redis shared by several processes.
//
// The shared window is approximate in two ways, both documented: it is the
// usual two-fixed-windows estimate of a sliding window (the previous
// window's count weighted by how much of it the sliding window still
// covers), and each process learns the others' counts only every
// sharedSyncInterval, so N processes may together overshoot by what N-1 of
// them admit in that interval (each still bounded by its own bucket).
//
// When the shared Redis cannot be reached the limiter falls back to the
// local buckets alone (each process enforces the full rate on its own) and
// logs the outage: a rate limit protects capacity, not isolation, and an
// outage of the limiter's Redis must not refuse every tenant's traffic.
type RateLimiter struct {
	rps   rate.Limit
	burst int
	log   *slog.Logger

	mu        sync.Mutex
	tenants   map[string]*TenantLimit
	lastSweep time.Time

	shared *sharedWindow // nil without SharedURL
}

// sharedWindow is the Redis side of the limiter.
type sharedWindow struct {
	client   *redis.Client
	prefix   string
	length   time.Duration // the sliding window
	limit    float64       // requests admitted per window, all processes together
	degraded atomic.Bool   // the last sync failed: local buckets only
	stop     context.CancelFunc
	done     chan struct{}
}

// NewRateLimiter returns a limiter. With SharedURL it connects to that
// Redis (an unreachable one at start is an error: it is most likely a
// configuration mistake) and starts the background sync; Close stops it.
func NewRateLimiter(ctx context.Context, opts RateLimitOptions) (*RateLimiter, error) {
	if opts.RequestsPerSecond < 1 || opts.Burst < 0 {
		return nil, errors.New("rate limit: requests_per_second must be at least 1 and burst not negative")
	}
	burst := opts.Burst
	if burst == 0 {
		burst = opts.RequestsPerSecond
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &RateLimiter{
		rps: rate.Limit(opts.RequestsPerSecond), burst: burst, log: log,
		tenants: map[string]*TenantLimit{}, lastSweep: time.Now(),
	}
	if opts.SharedURL == "" {
		return l, nil
	}
	if opts.KeyPrefix == "" {
		return nil, errors.New("rate limit: a shared window needs a key prefix")
	}
	ro, err := redis.ParseURL(opts.SharedURL)
	if err != nil {
		return nil, fmt.Errorf("rate_limit.shared: %w", err)
	}
	ro.PoolSize, ro.MaxRetries = 2, -1
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = sharedSyncTimeout, sharedSyncTimeout, sharedSyncTimeout
	client := redis.NewClient(ro)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("rate_limit.shared: %w", err)
	}
	// The window is one second, or longer when the burst is more than a
	// second's worth, so that a burst fits in it: it admits
	// RequestsPerSecond on average and the larger of the two at once.
	length := max(time.Second, time.Duration(float64(burst)/float64(opts.RequestsPerSecond)*float64(time.Second)))
	runCtx, stop := context.WithCancel(context.Background())
	l.shared = &sharedWindow{
		client: client, prefix: opts.KeyPrefix, length: length,
		limit: float64(opts.RequestsPerSecond) * length.Seconds(),
		stop:  stop, done: make(chan struct{}),
	}
	go l.syncLoop(runCtx)
	return l, nil
}

// Close stops the shared window's sync and closes its connections.
func (l *RateLimiter) Close() {
	if l.shared == nil {
		return
	}
	l.shared.stop()
	<-l.shared.done
	_ = l.shared.client.Close()
}

// For returns tenant's limit, shared with the tenant's other sessions in
// this process. Call Release when the session ends or changes tenant. The
// first session of a tenant in this process reads the tenant's shared
// window before it returns, so that a new sidecar does not admit a whole
// bucket before its first sync.
func (l *RateLimiter) For(ctx context.Context, tenant string) *TenantLimit {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.lastSweep) >= limiterSweepInterval {
		l.sweepLocked(now)
	}
	t := l.tenants[tenant]
	fresh := t == nil
	if fresh {
		t = &TenantLimit{l: l, tenant: tenant, bucket: rate.NewLimiter(l.rps, l.burst)}
		l.tenants[tenant] = t
	}
	t.refs++
	l.mu.Unlock()
	if fresh && l.shared != nil {
		t.mu.Lock()
		t.roll(now, l.shared.length)
		entry := syncEntry{t: t, win: t.win}
		t.mu.Unlock()
		// An error leaves the counts at 0; the sync loop reports outages.
		_ = l.settle(ctx, []syncEntry{entry})
	}
	return t
}

// sweepLocked forgets the tenants no session uses whose bucket is full and
// who owe nothing to the shared window: forgetting them changes nothing (a
// fresh limiter starts full), so reconnecting never buys a tenant a new
// burst, and memory stays bounded by the recently active tenants.
func (l *RateLimiter) sweepLocked(now time.Time) {
	l.lastSweep = now
	for id, t := range l.tenants {
		if t.refs > 0 || t.bucket.TokensAt(now) < float64(l.burst) {
			continue
		}
		t.mu.Lock()
		owes := t.pend > 0 || t.prevPend > 0
		t.mu.Unlock()
		if !owes {
			delete(l.tenants, id)
		}
	}
}

// TenantLimit is one tenant's budget in this process.
type TenantLimit struct {
	l      *RateLimiter
	tenant string
	bucket *rate.Limiter
	refs   int // sessions holding it, under l.mu

	// The shared window, under mu. Windows are numbered from the Unix
	// epoch; known* are the global counts Redis returned at the last sync,
	// pend and prevPend what this process admitted since, not yet added.
	mu                   sync.Mutex
	win                  int64
	knownCurr, knownPrev int64
	pend, prevPend       int64
	touched              bool // asked since the last sync
}

// Release gives the limit back; the session must not use it afterwards.
func (t *TenantLimit) Release() {
	t.l.mu.Lock()
	t.refs--
	t.l.mu.Unlock()
}

// Allow reports whether one more request of the tenant is admitted at now,
// and counts it if so.
func (t *TenantLimit) Allow(now time.Time) bool {
	sw := t.l.shared
	if sw == nil {
		return t.bucket.AllowN(now, 1)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.touched = true
	frac := t.roll(now, sw.length)
	if !sw.degraded.Load() {
		estimate := float64(t.knownPrev+t.prevPend)*(1-frac) + float64(t.knownCurr+t.pend)
		if estimate+1 > sw.limit {
			return false
		}
	}
	if !t.bucket.AllowN(now, 1) {
		return false
	}
	t.pend++
	return true
}

// roll moves the shared window's state to the window holding now and
// returns how far into it now is (0 to 1). Called with t.mu held.
func (t *TenantLimit) roll(now time.Time, length time.Duration) float64 {
	ns := now.UnixNano()
	win := ns / int64(length)
	if win < t.win {
		// Another session read the clock later and already moved on: stay
		// in the newer window, as at its start.
		return 0
	}
	switch {
	case win == t.win:
	case win == t.win+1:
		t.knownPrev, t.prevPend = t.knownCurr, t.pend
		t.knownCurr, t.pend = 0, 0
	default:
		t.knownPrev, t.prevPend, t.knownCurr, t.pend = 0, 0, 0, 0
	}
	t.win = win
	return float64(ns%int64(length)) / float64(length)
}

// syncLoop settles the counts with Redis every sharedSyncInterval.
func (l *RateLimiter) syncLoop(ctx context.Context) {
	defer close(l.shared.done)
	tick := time.NewTicker(sharedSyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := l.sync(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !l.shared.degraded.Swap(true):
			l.log.Warn("shared rate limit unavailable: each sidecar enforces the tenant rate on its own until it is back", "err", err)
		case err == nil && l.shared.degraded.Swap(false):
			l.log.Info("shared rate limit available again")
		}
	}
}

// syncEntry is one tenant's part of a sync pipeline.
type syncEntry struct {
	t         *TenantLimit
	win       int64
	pend      int64
	prevPend  int64
	curr, prv func() int64
}

// sync adds every active tenant's new counts to its Redis windows and reads
// back the global counts, in one round trip.
func (l *RateLimiter) sync(ctx context.Context) error {
	l.mu.Lock()
	entries := make([]syncEntry, 0, len(l.tenants))
	for _, t := range l.tenants {
		t.mu.Lock()
		if t.touched || t.pend > 0 || t.prevPend > 0 {
			entries = append(entries, syncEntry{t: t, win: t.win, pend: t.pend, prevPend: t.prevPend})
			t.touched = false
		}
		t.mu.Unlock()
	}
	l.mu.Unlock()
	if len(entries) == 0 {
		return nil
	}
	return l.settle(ctx, entries)
}

// settle runs the entries' pipeline and records the global counts.
func (l *RateLimiter) settle(ctx context.Context, entries []syncEntry) error {
	sw := l.shared
	ctx, cancel := context.WithTimeout(ctx, sharedSyncTimeout)
	defer cancel()
	pipe := sw.client.Pipeline()
	for i := range entries {
		e := &entries[i]
		e.curr = sw.add(ctx, pipe, e.t.tenant, e.win, e.pend)
		e.prv = sw.add(ctx, pipe, e.t.tenant, e.win-1, e.prevPend)
	}
	cmds, err := pipe.Exec(ctx)
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for _, e := range entries {
		curr, prv := e.curr(), e.prv()
		t := e.t
		t.mu.Lock()
		switch t.win {
		case e.win:
			t.knownCurr, t.pend = curr, t.pend-e.pend
			t.knownPrev, t.prevPend = prv, t.prevPend-e.prevPend
		case e.win + 1: // the window rolled during the round trip
			t.knownPrev, t.prevPend = curr, t.prevPend-e.pend
		}
		t.mu.Unlock()
	}
	return nil
}

// add queues adding n to tenant's count in window win (just reading it when
// n is 0, so idle windows create no keys) and returns how to get the count
// after the pipeline ran. Keys expire two windows after their last write:
// by then no sliding window covers them.
func (sw *sharedWindow) add(ctx context.Context, pipe redis.Pipeliner, tenant string, win, n int64) func() int64 {
	key := sw.prefix + tenant + ":" + strconv.FormatInt(win, 10)
	if n == 0 {
		c := pipe.Get(ctx, key)
		return func() int64 {
			v, _ := c.Int64() // a missing key counts 0
			return v
		}
	}
	c := pipe.IncrBy(ctx, key, n)
	pipe.PExpire(ctx, key, 2*sw.length)
	return c.Val
}
