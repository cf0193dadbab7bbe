package config

import (
	"strings"
	"testing"
	"time"
)

const testSecret = "0123456789abcdef0123456789abcdef"

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestParseFullExample(t *testing.T) {
	cfg := loadTestdata(t, "full.yaml", map[string]string{"TENANTGATE_JWT_SECRET": testSecret})
	if got := string(cfg.JWT.Secret); got != testSecret {
		t.Errorf("jwt.secret = %q, want the expanded variable", got)
	}
	if cfg.JWT.Leeway.D() != 30*time.Second || cfg.JWT.TenantClaim != "tenant_id" {
		t.Errorf("jwt = %+v", cfg.JWT)
	}
	if len(cfg.Tenants) != 2 || cfg.Tenants[1].Slug != "globex" || !cfg.Tenants[1].IsActive() {
		t.Errorf("tenants = %+v, want globex defaulted to slug globex and active", cfg.Tenants)
	}
	if cfg.Bolt.Password != "neo4j-dev-password" {
		t.Errorf("bolt.password = %q, want the ${VAR:-default} default", cfg.Bolt.Password)
	}
	if cfg.Postgres.PoolMode != "transaction" || cfg.Postgres.TenantSetting != "app.tenant_id" || cfg.Redis.KeyPrefix != "t:{tenant}:" || cfg.Redis.UpstreamConnections != 1 {
		t.Errorf("engine defaults not applied: %+v %+v", cfg.Postgres, cfg.Redis)
	}
	if !On(cfg.Postgres.EventLoop) || On(cfg.Redis.EventLoop) {
		t.Errorf("event_loop: postgres %v (default), redis %v (false in the file)", On(cfg.Postgres.EventLoop), On(cfg.Redis.EventLoop))
	}
	if ts := cfg.Postgres.TenantSignature; ts == nil || ts.Setting != "app.tenant_sig" || string(ts.Key) != testSecret+"-signing" {
		t.Errorf("postgres.tenant_signature = %+v, want the key and the default setting", ts)
	}
	if got := len(cfg.Listeners()); got != 4 {
		t.Errorf("Listeners() = %d sections, want 4", got)
	}
}

func TestMarshalRedactsSecrets(t *testing.T) {
	cfg := loadTestdata(t, "full.yaml", map[string]string{"TENANTGATE_JWT_SECRET": testSecret})
	out, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{testSecret, "s3cret", ":pw@", "neo4j-dev-password", "-signing"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("printed config contains secret %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"secret: <redacted>", "registry:redacted@127.0.0.1:5432", "listen: 127.0.0.1:6432"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("printed config lacks %q:\n%s", want, out)
		}
	}
}

func TestParseErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want string
	}{
		{"unknown top-level key", "admin: {listen: 127.0.0.1:1}\nadmn: {}\n", nil, "config: admn (line 2): unknown key"},
		{"unknown nested key", "jwt:\n  secret_file: x\n", nil, "jwt.secret_file (line 2): unknown key"},
		{"unknown key in inline listener section", "jwt: {secret: " + testSecret + "}\nredis: {listen: 127.0.0.1:1, upstream: redis://h:1, lissten: x}\n", nil, "redis.lissten (line 2): unknown key"},
		{"unset variable", "jwt:\n  secret: ${TG_UNSET_SECRET}\n", nil, "jwt.secret (line 2): environment variable TG_UNSET_SECRET is not set"},
		{"bad duration", "jwt:\n  leeway: 30 seconds\n", nil, `jwt.leeway (line 2): invalid duration "30 seconds"`},
		{"negative duration", "server:\n  drain_timeout: -1s\n", nil, "server.drain_timeout (line 2): invalid duration"},
		{"bad integer", "metrics:\n  max_tenants: many\n", nil, `metrics.max_tenants (line 2): invalid integer "many"`},
		{"bad boolean", "audit:\n  statements: sometimes\n", nil, `audit.statements (line 2): invalid boolean`},
		{"list expected", "tenants: acme\n", nil, "tenants (line 1): expected a list"},
		{"duplicate key", "admin: {listen: 127.0.0.1:1}\nadmin: {listen: 127.0.0.1:2}\n", nil, "admin (line 2): key given twice"},
		{"bad tenant id", "tenants:\n  - {id: 'a:b'}\n", nil, `tenants[0].id: "a:b" is not a valid tenant id`},
		{"duplicate tenant", "tenants:\n  - {id: a}\n  - {id: a, slug: b}\n", nil, `tenants[1].id: tenant "a" is listed twice`},
		{"short secret", "jwt: {secret: short}\n", nil, "jwt.secret: is 5 bytes"},
		{"listener without keys", "redis: {listen: 127.0.0.1:1, upstream: redis://h:1}\n", nil, "jwt: no verification key"},
		{"bad listen", "admin: {listen: nowhere}\n", nil, `admin.listen: "nowhere" is not host:port`},
		{"same listen twice", "jwt: {secret: " + testSecret + "}\nadmin: {listen: 127.0.0.1:7000}\nredis: {listen: 127.0.0.1:7000, upstream: redis://h:1}\n", nil, "redis.listen: 127.0.0.1:7000 is also admin.listen"},
		{"missing upstream", "jwt: {secret: " + testSecret + "}\npostgres: {listen: 127.0.0.1:1}\n", nil, "postgres.upstream: is required"},
		{"bad pool mode", "jwt: {secret: " + testSecret + "}\npostgres: {listen: 127.0.0.1:1, upstream: 'postgres://h/db', pool_mode: statement}\n", nil, `postgres.pool_mode: "statement" is not transaction or session`},
		{"short tenant signature key", "jwt: {secret: " + testSecret + "}\npostgres: {listen: 127.0.0.1:1, upstream: 'postgres://h/db', tenant_signature: {key: short}}\n", nil, "postgres.tenant_signature.key: is 5 bytes"},
		{"tenant signature outside the guarded prefix", "jwt: {secret: " + testSecret + "}\npostgres: {listen: 127.0.0.1:1, upstream: 'postgres://h/db', tenant_signature: {key: " + testSecret + ", setting: other.sig}}\n", nil, `postgres.tenant_signature.setting: "other.sig" must be another setting under "app."`},
		{"redis upstream connections over the limit", "jwt: {secret: " + testSecret + "}\nredis: {listen: 127.0.0.1:1, upstream: redis://h:1, upstream_connections: 65}\n", nil, "redis.upstream_connections: 65 is not between 1 and 64"},
		{"redis negative upstream connections", "jwt: {secret: " + testSecret + "}\nredis: {listen: 127.0.0.1:1, upstream: redis://h:1, upstream_connections: -1}\n", nil, "redis.upstream_connections: -1 is not between 1 and 64"},
		{"prefix without tenant", "jwt: {secret: " + testSecret + "}\nredis: {listen: 127.0.0.1:1, upstream: redis://h:1, key_prefix: 'x:'}\n", nil, "redis.key_prefix"},
		{"url error hides password", "registry: {postgres: 'mysql://u:hunter2@h/db'}\n", nil, `registry.postgres: scheme "mysql"`},
		{"empty file", "", nil, "the file is empty"},
		{"bolt database template with upper case", "jwt: {secret: " + testSecret + "}\nbolt: {listen: 127.0.0.1:1, upstream: bolt://h:1, mode: database, database_template: 'Tenant_{tenant}'}\n", nil, "bolt.database_template"},
		{"bolt database template without tenant", "jwt: {secret: " + testSecret + "}\nbolt: {listen: 127.0.0.1:1, upstream: bolt://h:1, database_template: kg}\n", nil, "bolt.database_template: \"kg\" must contain {tenant}"},
		{"bolt database template starting with a digit", "jwt: {secret: " + testSecret + "}\nbolt: {listen: 127.0.0.1:1, upstream: bolt://h:1, database_template: '1-{tenant}'}\n", nil, "must start with a letter"},
		{"bolt unqualified procedure", "jwt: {secret: " + testSecret + "}\nbolt: {listen: 127.0.0.1:1, upstream: bolt://h:1, procedures: [labels]}\n", nil, "bolt.procedures[0]: \"labels\" is not a qualified procedure name"},
		{"bolt wildcard procedure", "jwt: {secret: " + testSecret + "}\nbolt: {listen: 127.0.0.1:1, upstream: bolt://h:1, procedures: [db.index.fulltext.queryNodes, 'apoc.*']}\n", nil, "bolt.procedures[1]"},
		{"bolt duplicate procedure", "jwt: {secret: " + testSecret + "}\nbolt: {listen: 127.0.0.1:1, upstream: bolt://h:1, procedures: [a.b, A.B]}\n", nil, "bolt.procedures[1]: \"A.B\" is listed twice"},
		{"bolt allow_schema not a boolean", "jwt: {secret: " + testSecret + "}\nbolt: {listen: 127.0.0.1:1, upstream: bolt://h:1, allow_schema: maybe}\n", nil, "bolt.allow_schema (line 2): invalid boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), env(tt.env))
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks a password: %q", err)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	d := decoder{lookupEnv: env(map[string]string{"A": "1", "EMPTY": ""})}
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"${A}", "1"},
		{"x${A}y${A}", "x1y1"},
		{"${B:-def}", "def"},
		{"${EMPTY:-def}", "def"},
		{"${EMPTY}", ""},
		{"$${A}", "${A}"},
		{"${B:-}", ""},
	}
	for _, tt := range tests {
		got, err := d.expand(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"${B}", "${A", "${1X}", "${}"} {
		if _, err := d.expand(bad); err == nil {
			t.Errorf("expand(%q) succeeded, want error", bad)
		}
	}
}

func TestEnvironmentCannotInjectStructure(t *testing.T) {
	cfg, err := Parse([]byte("audit:\n  file: ${F}\n"), env(map[string]string{"F": "x\nstatements: true"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Audit.Statements {
		t.Error("an environment value changed another key")
	}
}

func TestBoltKeys(t *testing.T) {
	base := "jwt: {secret: " + testSecret + "}\nbolt: {listen: 127.0.0.1:1, upstream: bolt://h:1"
	cfg, err := Parse([]byte(base+"}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Bolt
	if b.Mode != "label" || b.DatabaseTemplate != "tenant-{tenant}" || b.Procedures != nil || b.AllowSchema {
		t.Errorf("bolt defaults = %+v, want label mode, tenant-{tenant}, the engine's procedures, no schema", b)
	}
	cfg, err = Parse([]byte(base+", mode: database, database_template: 'kg.{tenant}', procedures: [db.index.vector.queryNodes, my.graph.nodes], allow_schema: true}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	b = cfg.Bolt
	if b.Mode != "database" || b.DatabaseTemplate != "kg.{tenant}" || !b.AllowSchema ||
		strings.Join(b.Procedures, ",") != "db.index.vector.queryNodes,my.graph.nodes" {
		t.Errorf("bolt = %+v", b)
	}
	// An empty list allows no procedure at all, which is not the default.
	cfg, err = Parse([]byte(base+", procedures: []}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bolt.Procedures == nil || len(cfg.Bolt.Procedures) != 0 {
		t.Errorf("procedures: [] = %#v, want an empty, non-nil list", cfg.Bolt.Procedures)
	}
}
