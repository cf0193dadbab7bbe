package proxy

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

func TestEveryFamilyIsExportedBeforeTraffic(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg, MetricsOptions{MaxTenants: 10})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range families {
		got[f.GetName()] = true
	}
	for _, name := range []string{
		"tenantgate_connections_active", "tenantgate_connections_total", "tenantgate_requests_total",
		"tenantgate_refusals_total", "tenantgate_auth_failures_total", "tenantgate_request_duration_seconds",
		"tenantgate_upstream_connections",
	} {
		if !got[name] {
			t.Errorf("family %s is not exported", name)
		}
	}
}

func TestTenantLabelIsCapped(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, MetricsOptions{TenantLabel: true, MaxTenants: 2})
	for _, tenant := range []string{"a", "b", "c", "d", "a"} {
		m.Refusal("redis", tenant, "test")
	}
	if got := testutil.ToFloat64(m.refusalsTotal.WithLabelValues("redis", "test", "a")); got != 2 {
		t.Errorf("tenant a = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.refusalsTotal.WithLabelValues("redis", "test", OtherTenant)); got != 2 {
		t.Errorf("tenant other = %v, want 2 (c and d beyond the cap)", got)
	}
	out, err := testutil.CollectAndFormat(m.refusalsTotal, expfmt.TypeTextPlain, "tenantgate_refusals_total")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), `tenant="c"`) || strings.Contains(string(out), `tenant="d"`) {
		t.Errorf("tenants beyond the cap got their own series:\n%s", out)
	}
}

func TestNoTenantLabelByDefault(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, MetricsOptions{MaxTenants: 10})
	m.ForSession("postgres", "acme").Forwarded(0)
	out, err := testutil.CollectAndFormat(m.requestsTotal, expfmt.TypeTextPlain, "tenantgate_requests_total")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "tenant=") {
		t.Errorf("tenant label present although metrics.tenant_label is off:\n%s", out)
	}
}
