package policy

import (
	"context"
	"sync"
	"testing"
	"time"
)

// suspensions records onSuspend calls.
type suspensions struct {
	mu    sync.Mutex
	calls map[string]Reason
	seen  chan struct{}
}

func newSuspensions() *suspensions {
	return &suspensions{calls: map[string]Reason{}, seen: make(chan struct{}, 100)}
}

func (s *suspensions) onSuspend(id string, reason Reason) {
	s.mu.Lock()
	s.calls[id] = reason
	s.mu.Unlock()
	s.seen <- struct{}{}
}

func (s *suspensions) get() map[string]Reason {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Reason, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

func TestCheckSuspensionsStatic(t *testing.T) {
	reg, err := NewStaticRegistry([]Tenant{{ID: "ok", Active: true}, {ID: "off", Active: false}})
	if err != nil {
		t.Fatal(err)
	}
	s := newSuspensions()
	CheckSuspensions(t.Context(), reg, []string{"ok", "off", "gone", "off"}, s.onSuspend)
	got := s.get()
	want := map[string]Reason{"off": ReasonSuspendedTenant, "gone": ReasonUnknownTenant}
	if len(got) != len(want) || got["off"] != want["off"] || got["gone"] != want["gone"] {
		t.Fatalf("onSuspend calls = %v, want %v", got, want)
	}
	if len(s.seen) != 2 {
		t.Fatalf("%d calls for 2 tenants: duplicates were not collapsed", len(s.seen))
	}

	// A failing registry suspends nobody.
	s = newSuspensions()
	CheckSuspensions(t.Context(), failingRegistry{}, []string{"ok"}, s.onSuspend)
	if len(s.get()) != 0 {
		t.Fatal("a registry failure suspended a tenant")
	}
}

// TestWatchSuspensionsPostgres: a tenant set inactive in PostgreSQL is
// reported within a watch interval although the registry caches for an
// hour, and a deleted one is reported as unknown.
func TestWatchSuspensionsPostgres(t *testing.T) {
	clock := newClock()
	r, exec := newPGRegistry(t, PostgresRegistryOptions{TTL: time.Hour, Now: clock.Now})
	exec(`INSERT INTO tenantgate.tenants (id) VALUES ('acme'), ('globex'), ('initech')`)
	reg := Chain(r) // as the sidecar wires it
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for _, id := range []string{"acme", "globex", "initech"} {
		if _, err := reg.ByID(ctx, id); err != nil { // warm the cache
			t.Fatal(err)
		}
	}
	exec(`UPDATE tenantgate.tenants SET active = false WHERE id = 'acme'`)
	exec(`DELETE FROM tenantgate.tenants WHERE id = 'globex'`)

	s := newSuspensions()
	done := make(chan struct{})
	go func() {
		defer close(done)
		WatchSuspensions(ctx, reg, 20*time.Millisecond, func() []string { return []string{"acme", "globex", "initech"} }, s.onSuspend)
	}()
	deadline := time.After(5 * time.Second)
	for len(s.get()) < 2 {
		select {
		case <-s.seen:
		case <-deadline:
			t.Fatalf("onSuspend calls after 5s: %v", s.get())
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("WatchSuspensions did not return after cancel")
	}
	got := s.get()
	if got["acme"] != ReasonSuspendedTenant || got["globex"] != ReasonUnknownTenant || got["initech"] != "" {
		t.Fatalf("onSuspend calls = %v", got)
	}
	// The refresh also updated the cache new connections are checked against.
	if tn, err := r.ByID(t.Context(), "acme"); err != nil || tn.Active {
		t.Fatalf("ByID(acme) after the watch = %+v, %v", tn, err)
	}
}
