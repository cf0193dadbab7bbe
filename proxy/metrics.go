package proxy

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tenantgate/tenantgate/policy"
)

// Protocols are the label values of the protocol label.
var Protocols = []string{"postgres", "redis", "mongo", "bolt"}

// Request outcomes, the values of the outcome label.
const (
	OutcomeForwarded = "forwarded" // relayed unchanged
	OutcomeRewritten = "rewritten" // scoped to the tenant, then relayed
	OutcomeRefused   = "refused"   // answered with an error, not relayed
)

// Connection results, the values of tenantgate_connections_total's result label.
const (
	ConnAccepted     = "accepted"      // the client authenticated
	ConnAuthFailed   = "auth_failed"   // the client presented a refused credential
	ConnLimited      = "limited"       // the listener was at max_connections
	ConnHandshakeErr = "handshake_err" // the client left or timed out before authenticating
)

// Refusal reasons the listener itself produces; engines add their own.
const (
	ReasonConnectionLimit  = "connection_limit"
	ReasonHandshakeTimeout = "handshake_timeout"
	ReasonNotAuthenticated = "not_authenticated"
)

// authFailureReasons are the policy refusals most worth alerting on, whose
// series exist from the start.
var authFailureReasons = []policy.Reason{
	policy.ReasonMalformed, policy.ReasonExpired, policy.ReasonBadSignature, policy.ReasonBadAlg,
	policy.ReasonUnknownTenant, policy.ReasonSuspendedTenant,
}

// OtherTenant is the tenant label value for tenants beyond the cap.
const OtherTenant = "other"

// MetricsOptions configures NewMetrics.
type MetricsOptions struct {
	TenantLabel bool // label per-request series with the tenant
	MaxTenants  int  // distinct tenant label values; the rest become "other"
}

// Metrics are the tenantgate_ Prometheus families. The names and labels are
// a contract for dashboards and alerts (deploy/); do not rename them.
type Metrics struct {
	tenantLabel bool

	connectionsActive *prometheus.GaugeVec
	connectionsTotal  *prometheus.CounterVec
	requestsTotal     *prometheus.CounterVec
	refusalsTotal     *prometheus.CounterVec
	authFailuresTotal *prometheus.CounterVec
	requestDuration   *prometheus.HistogramVec
	upstreamConns     *prometheus.GaugeVec

	tenants tenantCap
}

// latencyBuckets span a proxy's added latency (tens of microseconds) up to
// slow upstream statements.
var latencyBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// NewMetrics creates the families and registers them with reg.
func NewMetrics(reg prometheus.Registerer, opts MetricsOptions) *Metrics {
	perRequest := []string{"protocol", "outcome"}
	perRefusal := []string{"protocol", "reason"}
	if opts.TenantLabel {
		perRequest = append(perRequest, "tenant")
		perRefusal = append(perRefusal, "tenant")
	}
	m := &Metrics{
		tenantLabel: opts.TenantLabel,
		connectionsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tenantgate_connections_active", Help: "Client connections open now.",
		}, []string{"protocol"}),
		connectionsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_connections_total", Help: "Client connections by how their handshake ended.",
		}, []string{"protocol", "result"}),
		requestsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_requests_total", Help: "Client requests by outcome: forwarded, rewritten or refused.",
		}, perRequest),
		refusalsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_refusals_total", Help: "Refused requests and connections by reason.",
		}, perRefusal),
		authFailuresTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_auth_failures_total", Help: "Refused credentials by reason.",
		}, []string{"protocol", "reason"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tenantgate_request_duration_seconds", Help: "Time from a request's arrival to its reply leaving the proxy.",
			Buckets: latencyBuckets,
		}, []string{"protocol"}),
		upstreamConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tenantgate_upstream_connections", Help: "Upstream connections by state (idle, active).",
		}, []string{"protocol", "state"}),
		tenants: tenantCap{max: max(opts.MaxTenants, 1), seen: map[string]struct{}{}},
	}
	reg.MustRegister(m.connectionsActive, m.connectionsTotal, m.requestsTotal, m.refusalsTotal,
		m.authFailuresTotal, m.requestDuration, m.upstreamConns)
	m.initSeries()
	return m
}

// initSeries creates the zero-valued series that exist before any traffic,
// so every family is visible from the start and rate() has a baseline.
func (m *Metrics) initSeries() {
	for _, p := range Protocols {
		m.connectionsActive.WithLabelValues(p)
		for _, r := range []string{ConnAccepted, ConnAuthFailed, ConnLimited, ConnHandshakeErr} {
			m.connectionsTotal.WithLabelValues(p, r)
		}
		for _, o := range []string{OutcomeForwarded, OutcomeRewritten, OutcomeRefused} {
			m.requestsTotal.WithLabelValues(m.labels(p, o, "")...)
		}
		for _, r := range []string{ReasonConnectionLimit, ReasonHandshakeTimeout, ReasonNotAuthenticated} {
			m.refusalsTotal.WithLabelValues(m.labels(p, r, "")...)
		}
		for _, r := range authFailureReasons {
			m.authFailuresTotal.WithLabelValues(p, string(r))
		}
		m.requestDuration.WithLabelValues(p)
		for _, s := range []string{"idle", "active"} {
			m.upstreamConns.WithLabelValues(p, s)
		}
	}
}

func (m *Metrics) labels(protocol, value, tenant string) []string {
	if m.tenantLabel {
		return []string{protocol, value, tenant}
	}
	return []string{protocol, value}
}

// ConnectionResult counts one ended handshake.
func (m *Metrics) ConnectionResult(protocol, result string) {
	m.connectionsTotal.WithLabelValues(protocol, result).Inc()
}

// AuthFailure counts a refused credential.
func (m *Metrics) AuthFailure(protocol, reason string) {
	m.authFailuresTotal.WithLabelValues(protocol, reason).Inc()
}

// Refusal counts a refusal of a request (tenant known) or of a connection
// (tenant "").
func (m *Metrics) Refusal(protocol, tenant, reason string) {
	m.refusalsTotal.WithLabelValues(m.labels(protocol, reason, m.tenants.label(tenant))...).Inc()
}

// UpstreamConnections sets the number of upstream connections in state.
func (m *Metrics) UpstreamConnections(protocol, state string, n int) {
	m.upstreamConns.WithLabelValues(protocol, state).Set(float64(n))
}

// UpstreamConnectionsGauge is the series UpstreamConnections sets, bound
// once for a caller that reports on its hot path.
func (m *Metrics) UpstreamConnectionsGauge(protocol, state string) prometheus.Gauge {
	return m.upstreamConns.WithLabelValues(protocol, state)
}

// RequestMetrics are the per-request series of one session, bound once at
// authentication so the hot path does no label lookups.
type RequestMetrics struct {
	forwarded, rewritten, refused prometheus.Counter
	duration                      prometheus.Observer
}

// ForSession binds the per-request series for protocol and tenant.
func (m *Metrics) ForSession(protocol, tenant string) *RequestMetrics {
	t := m.tenants.label(tenant)
	return &RequestMetrics{
		forwarded: m.requestsTotal.WithLabelValues(m.labels(protocol, OutcomeForwarded, t)...),
		rewritten: m.requestsTotal.WithLabelValues(m.labels(protocol, OutcomeRewritten, t)...),
		refused:   m.requestsTotal.WithLabelValues(m.labels(protocol, OutcomeRefused, t)...),
		duration:  m.requestDuration.WithLabelValues(protocol),
	}
}

// Forwarded counts a request relayed unchanged that took d.
func (r *RequestMetrics) Forwarded(d time.Duration) {
	r.forwarded.Inc()
	r.duration.Observe(d.Seconds())
}

// Rewritten counts a request scoped to the tenant that took d.
func (r *RequestMetrics) Rewritten(d time.Duration) {
	r.rewritten.Inc()
	r.duration.Observe(d.Seconds())
}

// tenantCap hands out tenant label values, at most max distinct ones; later
// tenants share the label "other" so a tenant flood cannot blow up the
// series count.
type tenantCap struct {
	mu   sync.Mutex
	max  int
	seen map[string]struct{}
}

func (c *tenantCap) label(tenant string) string {
	if tenant == "" {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[tenant]; ok {
		return tenant
	}
	if len(c.seen) >= c.max {
		return OtherTenant
	}
	c.seen[tenant] = struct{}{}
	return tenant
}
