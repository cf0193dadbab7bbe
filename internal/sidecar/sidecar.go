// Package sidecar assembles a running tenantgate from a Config: the token
// verifier, the tenant registry, the shared proxy services, the admin
// listener and one listener per configured protocol engine. It is the only
// place that knows every engine; the engines never know each other.
package sidecar

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tenantgate/tenantgate/config"
	"github.com/tenantgate/tenantgate/policy"
	"github.com/tenantgate/tenantgate/proxy"
	boltproxy "github.com/tenantgate/tenantgate/proxy/bolt"
	mongoproxy "github.com/tenantgate/tenantgate/proxy/mongo"
	pgproxy "github.com/tenantgate/tenantgate/proxy/pg"
	redisproxy "github.com/tenantgate/tenantgate/proxy/redis"
)

// Sidecar is a configured, bound, not yet serving tenantgate.
type Sidecar struct {
	cfg       *config.Config
	log       *slog.Logger
	admin     *proxy.Admin
	listeners []*proxy.Listener
	sessions  *proxy.SessionTable
	registry  policy.Registry
	closers   []func()
}

// engineFactory builds the engine of one protocol section. Protocols without
// an engine in this build have no entry, and configuring them is an error.
type engineFactory func(ctx context.Context, cfg *config.Config, deps proxy.Deps) (proxy.Engine, proxy.TLSMode, error)

// engineFor returns the factory of protocol's engine, or nil when this build
// has none. Each protocol engine's package adds its case here as it lands.
func engineFor(protocol string) engineFactory {
	switch protocol {
	case "postgres":
		return newPostgresEngine
	case "mongo":
		return newMongoEngine
	case "bolt":
		return newBoltEngine
	case "redis":
		return newRedisEngine
	default:
		return nil
	}
}

func newRedisEngine(ctx context.Context, cfg *config.Config, deps proxy.Deps) (proxy.Engine, proxy.TLSMode, error) {
	opts := redisproxy.Options{
		Upstream: string(cfg.Redis.Upstream), KeyPrefix: cfg.Redis.KeyPrefix,
		UpstreamConnections: cfg.Redis.UpstreamConnections, NoEventLoop: !config.On(cfg.Redis.EventLoop),
		Log: deps.Log, Metrics: deps.Metrics,
	}
	if rl := cfg.Redis.RateLimit; rl != nil {
		opts.RateLimit = &redisproxy.RateLimit{RequestsPerSecond: rl.RequestsPerSecond, Burst: rl.Burst, Shared: string(rl.Shared)}
	}
	e, err := redisproxy.New(ctx, opts)
	if err != nil {
		return nil, 0, err
	}
	return e, proxy.TLSDirect, nil
}

func newMongoEngine(ctx context.Context, cfg *config.Config, deps proxy.Deps) (proxy.Engine, proxy.TLSMode, error) {
	m := cfg.Mongo
	e, err := mongoproxy.New(ctx, mongoproxy.Options{
		Upstream: string(m.Upstream), Mode: m.Mode, DatabaseTemplate: m.DatabaseName,
		TenantField: m.TenantField, MaxMessageBytes: m.MaxMessageBytes, Log: deps.Log, Metrics: deps.Metrics,
	})
	if err != nil {
		return nil, 0, err // not a typed nil *Engine in a non-nil interface
	}
	return e, proxy.TLSDirect, nil
}

func newBoltEngine(_ context.Context, cfg *config.Config, deps proxy.Deps) (proxy.Engine, proxy.TLSMode, error) {
	b := cfg.Bolt
	e, err := boltproxy.New(boltproxy.Options{
		Upstream: string(b.Upstream), Username: b.Username, Password: string(b.Password), Database: b.Database,
		Mode: b.Mode, LabelTemplate: b.LabelTemplate, DatabaseTemplate: b.DatabaseTemplate, Advertise: b.Advertise,
		Procedures: boltproxy.NodeProcedures(b.Procedures), AllowSchema: b.AllowSchema, Log: deps.Log,
	})
	if err != nil {
		return nil, 0, err
	}
	return e, proxy.TLSDirect, nil
}

// PostgresSigner is hardened mode's tenant signer of p, or nil when
// postgres.tenant_signature is not configured.
func PostgresSigner(p *config.Postgres) (*pgproxy.TenantSigner, error) {
	if p.TenantSignature == nil {
		return nil, nil
	}
	return pgproxy.NewTenantSigner([]byte(p.TenantSignature.Key), p.TenantSignature.Setting)
}

func newPostgresEngine(ctx context.Context, cfg *config.Config, deps proxy.Deps) (proxy.Engine, proxy.TLSMode, error) {
	p := cfg.Postgres
	signer, err := PostgresSigner(p)
	if err != nil {
		return nil, 0, err
	}
	e, err := pgproxy.New(pgproxy.Options{
		Upstream: string(p.Upstream), Databases: p.Databases, RequireTLS: p.RequireTLS,
		SessionPooling: p.PoolMode == "session", PoolSize: p.PoolSize, MinIdle: p.MinIdle, MaxLifetime: p.MaxLifetime.D(),
		ConnectTimeout: p.ConnectTimeout.D(), PoolTimeout: p.PoolTimeout.D(), TenantSetting: p.TenantSetting,
		AllowDDL: p.DDL == "allow", Signer: signer, NoEventLoop: !config.On(p.EventLoop), Metrics: deps.Metrics, Log: deps.Log,
	})
	if err != nil {
		return nil, 0, err
	}
	// The same checks as `tenantgate pg audit`: refuse to serve on a
	// database that would not keep tenants apart.
	posture, err := e.CheckPosture(ctx)
	if err != nil {
		e.Close()
		return nil, 0, fmt.Errorf("checking the database posture: %w", err)
	}
	if posture.Critical() {
		if !p.AllowUnsafe {
			e.Close()
			return nil, 0, posture.UnsafeError()
		}
		deps.Log.Warn("postgres: starting on an unsafe database (postgres.allow_unsafe)", "err", posture.UnsafeError())
	}
	return e, proxy.TLSNegotiated, nil
}

// New verifies keys, connects the registry, and binds every listener. Any
// failure, an address in use included, is returned before anything serves.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *Sidecar, err error) {
	s := &Sidecar{cfg: cfg, log: log, sessions: proxy.NewSessionTable()}
	defer func() {
		if err != nil {
			s.close()
		}
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := proxy.NewMetrics(reg, proxy.MetricsOptions{TenantLabel: cfg.Metrics.TenantLabel, MaxTenants: cfg.Metrics.MaxTenants})

	auditor, err := s.openAudit()
	if err != nil {
		return nil, err
	}

	if s.admin, err = proxy.NewAdmin(cfg.Admin.Listen, reg, log); err != nil {
		return nil, fmt.Errorf("admin.listen: %w", err)
	}

	listeners := cfg.Listeners()
	if len(listeners) == 0 {
		log.Info("no protocol sections configured: serving the admin listener only")
	}
	if !cfg.JWT.HasKeys() {
		return s, nil // Validate made sure no listener needs keys
	}
	auth, err := s.newAuthenticator(ctx)
	if err != nil {
		return nil, err
	}
	deps := proxy.Deps{Auth: auth, Sessions: s.sessions, Metrics: metrics, Audit: auditor, Log: log}
	for _, nl := range listeners {
		factory := engineFor(nl.Key)
		if factory == nil {
			return nil, fmt.Errorf("%s: this build of tenantgate has no %s engine yet; remove the %s section", nl.Key, nl.Key, nl.Key)
		}
		engine, mode, err := factory(ctx, cfg, deps)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", nl.Key, err)
		}
		// Engines that own upstream pools release them after their listener
		// has drained (closers run last, in reverse order).
		switch c := engine.(type) {
		case interface{ Close() }:
			s.closers = append(s.closers, c.Close)
		case interface{ Close() error }:
			s.closers = append(s.closers, func() { _ = c.Close() })
		}
		tlsConfig, err := loadTLS(nl.TLS)
		if err != nil {
			return nil, fmt.Errorf("%s.tls: %w", nl.Key, err)
		}
		l, err := proxy.Listen(proxy.ListenerConfig{
			Protocol: nl.Key, Address: nl.Listen, TLS: tlsConfig, TLSMode: mode,
			MaxConnections: nl.MaxConnections, HandshakeTimeout: nl.HandshakeTimeout.D(),
			IdleTimeout: nl.IdleTimeout.D(), SNISuffix: nl.SNISuffix,
		}, engine, deps)
		if err != nil {
			return nil, fmt.Errorf("%s.listen: %w", nl.Key, err)
		}
		s.listeners = append(s.listeners, l)
	}
	return s, nil
}

func (s *Sidecar) openAudit() (*proxy.Auditor, error) {
	var w io.Writer
	if path := s.cfg.Audit.File; path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("audit.file: %w", err)
		}
		s.closers = append(s.closers, func() { _ = f.Close() })
		w = f
	}
	return proxy.NewAuditor(s.log, w, s.cfg.Audit.Statements), nil
}

func (s *Sidecar) newAuthenticator(ctx context.Context) (*policy.Authenticator, error) {
	j := s.cfg.JWT
	vc := policy.VerifierConfig{
		Secret: []byte(j.Secret), JWKSURL: j.JWKSURL, JWKSRefresh: j.JWKSRefresh.D(),
		Issuer: j.Issuer, Audience: j.Audience, TenantClaim: j.TenantClaim,
		Leeway: j.Leeway.D(), CacheSize: j.CacheSize, Algorithms: j.Algorithms,
	}
	for i, path := range j.PublicKeys {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("jwt.public_keys[%d]: %w", i, err)
		}
		vc.PublicKeysPEM = append(vc.PublicKeysPEM, pem)
	}
	verifier, err := policy.NewVerifier(ctx, vc)
	if err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	s.closers = append(s.closers, verifier.Close)

	reg, err := s.newRegistry(ctx)
	if err != nil {
		return nil, err
	}
	s.registry = reg
	return policy.NewAuthenticator(verifier, reg), nil
}

func (s *Sidecar) newRegistry(ctx context.Context) (policy.Registry, error) {
	var regs []policy.Registry
	if len(s.cfg.Tenants) > 0 {
		tenants := make([]policy.Tenant, len(s.cfg.Tenants))
		for i, t := range s.cfg.Tenants {
			tenants[i] = policy.Tenant{ID: t.ID, Slug: t.Slug, Active: t.IsActive()}
		}
		static, err := policy.NewStaticRegistry(tenants)
		if err != nil {
			return nil, fmt.Errorf("tenants: %w", err)
		}
		regs = append(regs, static)
	}
	if r := s.cfg.Registry; r != nil && r.Postgres != "" {
		opts := policy.PostgresRegistryOptions{TTL: r.TTL.D()}
		if r.Redis != "" {
			cache, err := policy.NewRedisCache(string(r.Redis), r.TTL.D())
			if err != nil {
				return nil, fmt.Errorf("registry.redis: %w", err)
			}
			s.closers = append(s.closers, func() { _ = cache.Close() })
			opts.Cache = cache
		}
		pg, err := policy.NewPostgresRegistry(ctx, string(r.Postgres), opts)
		if err != nil {
			return nil, fmt.Errorf("registry.postgres: %w", err)
		}
		s.closers = append(s.closers, pg.Close)
		regs = append(regs, pg)
	}
	if len(regs) == 0 {
		return nil, errors.New("tenants: no tenant registry: list tenants or configure registry.postgres")
	}
	return policy.Chain(regs...), nil
}

func loadTLS(t *config.TLS) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// AdminAddr is the admin listener's bound address.
func (s *Sidecar) AdminAddr() string { return s.admin.Addr().String() }

// Run serves until ctx is cancelled, then drains: listeners stop accepting,
// open sessions get until the drain deadline to finish, and the rest are
// closed. It returns an error only when a listener fails while serving.
func (s *Sidecar) Run(ctx context.Context) error {
	errs := make(chan error, len(s.listeners)+1)
	var wg sync.WaitGroup
	serve := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errs <- err
			}
		}()
	}
	serve(s.admin.Serve)
	for _, l := range s.listeners {
		serve(l.Serve)
		s.log.Info("listening", "protocol", l.Protocol(), "addr", l.Addr().String())
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if s.registry != nil {
		go s.watchSuspensions(watchCtx)
	}
	s.admin.SetReady(true)
	s.log.Info("tenantgate ready", "admin", s.AdminAddr(), "listeners", len(s.listeners))

	var runErr error
	select {
	case <-ctx.Done():
		s.log.Info("shutting down: draining sessions", "deadline", s.cfg.Server.DrainTimeout.D().String(), "open_sessions", s.sessions.Len())
	case runErr = <-errs:
		s.log.Error("listener failed; shutting down", "err", runErr)
	}
	s.admin.SetReady(false)
	drainCtx, cancel := context.WithTimeout(context.Background(), s.cfg.Server.DrainTimeout.D())
	defer cancel()
	var dwg sync.WaitGroup
	for _, l := range s.listeners {
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			if err := l.Shutdown(drainCtx); err != nil {
				s.log.Warn("drain incomplete", "err", err)
			}
		}()
	}
	dwg.Wait()
	shutCtx, cancelShut := context.WithTimeout(context.Background(), time.Second)
	defer cancelShut()
	_ = s.admin.Shutdown(shutCtx)
	wg.Wait()
	s.close()
	return runErr
}

func (s *Sidecar) watchSuspensions(ctx context.Context) {
	interval := 30 * time.Second
	if r := s.cfg.Registry; r != nil {
		interval = r.WatchInterval.D()
	}
	policy.WatchSuspensions(ctx, s.registry, interval, s.sessions.Tenants, func(tenant string, reason policy.Reason) {
		n := s.sessions.CloseTenant(tenant, proxy.ErrTenantSuspended)
		s.log.Warn("tenant no longer active: closed its sessions", "tenant", tenant, "reason", string(reason), "sessions", n)
	})
}

func (s *Sidecar) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}
