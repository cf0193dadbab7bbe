package pg

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/testutil"
)

// BenchmarkPoolGetPut is what every transaction costs in the pool in
// transaction pooling: take an idle connection that last served the
// client's tenant, give it back. No statement runs.
func BenchmarkPoolGetPut(b *testing.B) {
	p, err := NewPool(PoolOptions{Upstream: testutil.PostgresURL(b), Size: 4, WaitTimeout: 5 * time.Second,
		MaxLifetime: time.Hour, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	c, err := p.Get(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	p.put(c)
	b.ReportAllocs()
	for b.Loop() {
		c, err := p.Get(ctx, "acme")
		if err != nil {
			b.Fatal(err)
		}
		p.put(c)
	}
}
