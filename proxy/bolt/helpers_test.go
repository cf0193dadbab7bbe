package bolt

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/proxytest"
	"github.com/tenantgate/tenantgate/proxy"
)

// testProxy is a Bolt listener in front of a scripted peer.
type testProxy struct {
	t        testing.TB
	peer     *scriptedPeer
	addr     string
	env      *proxytest.Env
	listener *proxy.Listener
}

// startProxy serves the tenants "acme" and "globex" through a Bolt listener
// in front of peer.
func startProxy(t testing.TB, peer *scriptedPeer, opts Options) *testProxy {
	t.Helper()
	return startProxyFor(t, peer, opts, "acme", "globex")
}

// startProxyFor is startProxy for the given tenants.
func startProxyFor(t testing.TB, peer *scriptedPeer, opts Options, tenants ...string) *testProxy {
	t.Helper()
	env := proxytest.NewEnv(t, tenants...)
	// Bind first: ROUTE replies advertise the listener's own address.
	deferred := &deferredEngine{}
	l := env.Listen(t, proxy.ListenerConfig{Protocol: "bolt", MaxConnections: 50, HandshakeTimeout: 5 * time.Second}, deferred)
	addr := l.Addr().String()
	opts.Upstream = peer.url()
	opts.Username, opts.Password = peer.username, peer.password
	if opts.Advertise == "" {
		opts.Advertise = addr
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	deferred.e.Store(e)
	return &testProxy{t: t, peer: peer, addr: addr, env: env, listener: l}
}

// deferredEngine lets the listener bind before the engine exists.
type deferredEngine struct{ e atomic.Pointer[Engine] }

func (d *deferredEngine) Serve(s *proxy.Session) error { return d.e.Load().Serve(s) }

func (p *testProxy) token(tenant string) string { return proxytest.Token(p.t, tenant) }
