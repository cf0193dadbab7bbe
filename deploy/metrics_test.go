package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	"github.com/tenantgate/tenantgate/proxy"
)

// metricName matches the tenantgate_ metric names in PromQL (and in prose).
var metricName = regexp.MustCompile(`tenantgate_[a-z_]+`)

// registeredFamilies are the families proxy.NewMetrics registers, with the
// label names of each, as Prometheus sees them after a Gather.
func registeredFamilies(t interface{ Fatal(...any) }) map[string][]string {
	reg := prometheus.NewRegistry()
	proxy.NewMetrics(reg, proxy.MetricsOptions{MaxTenants: 1})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, mf := range mfs {
		var names []string
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if !slices.Contains(names, l.GetName()) {
					names = append(names, l.GetName())
				}
			}
		}
		out[mf.GetName()] = names
	}
	return out
}

// usedMetrics returns the tenantgate_ names in text, histogram series
// suffixes stripped to their family name.
func usedMetrics(text string) []string {
	var out []string
	for _, m := range metricName.FindAllString(text, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(m, suffix); ok {
				m = base
				break
			}
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// metricNames checks that the dashboard and the alert rules use only
// registered families, and that the dashboard shows every family.
func (c *checker) metricNames() {
	registered := map[string][]string{}
	func() {
		defer func() {
			if r := recover(); r != nil {
				c.errorf("proxy.NewMetrics: %v", r)
			}
		}()
		registered = registeredFamilies(fatalFunc(func(args ...any) { c.errorf("gather: %v", args) }))
	}()
	if len(registered) == 0 {
		c.errorf("proxy.NewMetrics registered no families")
		return
	}
	dash, err := os.ReadFile(c.path("grafana/tenantgate-dashboard.json"))
	if err != nil {
		c.errorf("%v", err)
		return
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dash, &d); err != nil {
		c.errorf("grafana/tenantgate-dashboard.json: %v", err)
		return
	}
	var exprs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			c.errorf("grafana: panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	alerts, err := os.ReadFile(c.path("prometheus/alerts.yaml"))
	if err != nil {
		c.errorf("%v", err)
		return
	}
	if _, err := yaml.YAMLToJSON(alerts); err != nil {
		c.errorf("prometheus/alerts.yaml: %v", err)
	}
	for _, src := range []struct{ file, text string }{
		{"grafana/tenantgate-dashboard.json", string(dash)},
		{"prometheus/alerts.yaml", string(alerts)},
	} {
		used := usedMetrics(src.text)
		if len(used) == 0 {
			c.errorf("%s uses no tenantgate_ metric", src.file)
		}
		for _, m := range used {
			if _, ok := registered[m]; !ok {
				c.errorf("%s uses %s, which proxy.NewMetrics does not register (registered: %v)", src.file, m, slices.Sorted(mapsKeys(registered)))
			}
		}
	}
	shown := usedMetrics(strings.Join(exprs, "\n"))
	for name := range registered {
		if strings.HasPrefix(name, "tenantgate_") && !slices.Contains(shown, name) {
			c.errorf("grafana: no panel queries %s", name)
		}
	}
	// Labels the dashboard groups by must exist on the family it groups.
	by := regexp.MustCompile(`by \(([a-z_, ]+)\) \(\s*(?:rate\()?(tenantgate_[a-z_]+)`)
	for _, e := range exprs {
		for _, m := range by.FindAllStringSubmatch(e, -1) {
			family := usedMetrics(m[2])[0]
			for _, l := range strings.Split(m[1], ",") {
				l = strings.TrimSpace(l)
				if l == "le" && strings.HasSuffix(m[2], "_bucket") {
					continue
				}
				if !slices.Contains(registered[family], l) {
					c.errorf("grafana: %q groups %s by %s, which it does not have (labels %v)", e, family, l, registered[family])
				}
			}
		}
	}
}

type fatalFunc func(...any)

func (f fatalFunc) Fatal(args ...any) { f(args...) }

func TestUsedMetrics(t *testing.T) {
	got := usedMetrics(`histogram_quantile(0.9, sum by (le) (rate(tenantgate_request_duration_seconds_bucket[5m])))
		/ tenantgate_request_duration_seconds_count + tenantgate_requests_total`)
	want := []string{"tenantgate_request_duration_seconds", "tenantgate_requests_total"}
	if !slices.Equal(got, want) {
		t.Fatalf("usedMetrics = %v, want %v", got, want)
	}
}

func TestRegisteredFamilies(t *testing.T) {
	fams := registeredFamilies(t)
	for _, name := range []string{"tenantgate_connections_active", "tenantgate_connections_total", "tenantgate_requests_total",
		"tenantgate_refusals_total", "tenantgate_auth_failures_total", "tenantgate_request_duration_seconds", "tenantgate_upstream_connections"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("proxy.NewMetrics does not register %s (the dashboard and alerts rely on it)", name)
		}
	}
}
