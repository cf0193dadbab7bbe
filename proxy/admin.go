package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Admin serves GET /metrics, /healthz and /readyz.
//
// /healthz answers 200 while the process runs. /readyz answers 200 only when
// the process is ready (every listener bound and serving, not draining) and
// every readiness check passes; otherwise 503 with the failing checks, so a
// Kubernetes readiness probe takes a draining sidecar out of rotation.
type Admin struct {
	srv   *http.Server
	ln    net.Listener
	ready atomic.Bool

	mu     sync.Mutex
	checks map[string]func(context.Context) error
}

// NewAdmin binds addr and prepares the handlers.
func NewAdmin(addr string, gatherer prometheus.Gatherer, log *slog.Logger) (*Admin, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener on %s: %w", addr, err)
	}
	a := &Admin{ln: ln, checks: map[string]func(context.Context) error{}}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", a.serveReady)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	return a, nil
}

// Addr is the bound address.
func (a *Admin) Addr() net.Addr { return a.ln.Addr() }

// SetReady marks the process ready or not.
func (a *Admin) SetReady(ready bool) { a.ready.Store(ready) }

// AddReadinessCheck adds a check that /readyz runs (e.g. an upstream ping).
func (a *Admin) AddReadinessCheck(name string, check func(context.Context) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks[name] = check
}

func (a *Admin) serveReady(w http.ResponseWriter, r *http.Request) {
	var failures []string
	if !a.ready.Load() {
		failures = append(failures, "not serving (starting or draining)")
	}
	a.mu.Lock()
	names := make([]string, 0, len(a.checks))
	for name := range a.checks {
		names = append(names, name)
	}
	a.mu.Unlock()
	sort.Strings(names)
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	for _, name := range names {
		a.mu.Lock()
		check := a.checks[name]
		a.mu.Unlock()
		if err := check(ctx); err != nil {
			failures = append(failures, name+": "+err.Error())
		}
	}
	if len(failures) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, strings.Join(failures, "\n"))
		return
	}
	fmt.Fprintln(w, "ready")
}

// Serve serves until Shutdown; it returns nil after Shutdown.
func (a *Admin) Serve() error {
	if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin listener: %w", err)
	}
	return nil
}

// Shutdown stops the admin listener.
func (a *Admin) Shutdown(ctx context.Context) error { return a.srv.Shutdown(ctx) }
