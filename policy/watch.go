package policy

import (
	"context"
	"time"
)

// WatchSuspensions closes the gap between "a tenant is suspended" and "its
// open connections end". Every interval it looks up, bypassing caches (see
// Refresher), each tenant id that active returns (the proxy's connected
// tenants) and calls onSuspend for each one that is now inactive
// (ReasonSuspendedTenant) or no longer registered (ReasonUnknownTenant).
//
// A tenant keeps being reported on every tick for as long as active returns
// it, so onSuspend must be idempotent (closing a tenant's sessions is). A
// registry failure reports nothing: a database hiccup must not disconnect
// every tenant, and new connections are refused meanwhile anyway.
//
// WatchSuspensions blocks until ctx ends; run it in its own goroutine.
// interval <= 0 means DefaultRegistryTTL.
func WatchSuspensions(ctx context.Context, reg Registry, interval time.Duration, active func() []string, onSuspend func(tenantID string, reason Reason)) {
	if interval <= 0 {
		interval = DefaultRegistryTTL
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			CheckSuspensions(ctx, reg, active(), onSuspend)
		}
	}
}

// CheckSuspensions is one round of WatchSuspensions over ids.
func CheckSuspensions(ctx context.Context, reg Registry, ids []string, onSuspend func(tenantID string, reason Reason)) {
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] || ctx.Err() != nil {
			continue
		}
		seen[id] = true
		t, err := lookupFresh(ctx, reg, id)
		switch {
		case ReasonOf(err) == ReasonUnknownTenant:
			onSuspend(id, ReasonUnknownTenant)
		case err != nil:
			// registry unavailable: see WatchSuspensions
		case !t.Active:
			onSuspend(id, ReasonSuspendedTenant)
		}
	}
}
