// Package config loads and validates tenantgate's YAML configuration.
//
// The file is strict: an unknown key, a malformed value or an unset ${VAR}
// is an error that names the dotted key and its line, so a typo can never
// silently disable a check. Values may reference the environment as ${VAR}
// or ${VAR:-default}. Secrets are typed (Secret, SecretURL) so that printing
// a resolved config never shows them.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file. Keys of the top-level sections are
// a contract outside tooling relies on; add keys, never rename them.
type Config struct {
	JWT      JWT       `yaml:"jwt"`
	Tenants  []Tenant  `yaml:"tenants"`
	Registry *Registry `yaml:"registry"`
	Admin    Admin     `yaml:"admin"`
	Audit    Audit     `yaml:"audit"`
	Metrics  Metrics   `yaml:"metrics"`
	Server   Server    `yaml:"server"`
	Postgres *Postgres `yaml:"postgres"`
	Redis    *Redis    `yaml:"redis"`
	Mongo    *Mongo    `yaml:"mongo"`
	Bolt     *Bolt     `yaml:"bolt"`
}

// Duration is a time.Duration written as "30s", "5m".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalYAML prints the duration the way it is written.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Secret is a value that is never printed.
type Secret string

// MarshalYAML redacts the secret.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return "", nil
	}
	return "<redacted>", nil
}

// SecretURL is a connection URL whose password is never printed.
type SecretURL string

// MarshalYAML prints the URL with its password redacted.
func (s SecretURL) MarshalYAML() (any, error) { return RedactURL(string(s)), nil }

// RedactURL replaces the password of a URL with "<redacted>". Unparsable
// input is redacted whole, since it may be a secret.
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "<redacted>"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	}
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, "redacted")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// JWT says how tokens are verified.
type JWT struct {
	Secret      Secret   `yaml:"secret"`       // HS256/384/512 shared secret
	PublicKeys  []string `yaml:"public_keys"`  // PEM files: RS*, PS*, ES*, EdDSA
	JWKSURL     string   `yaml:"jwks_url"`     // JWKS endpoint, refreshed in the background
	JWKSRefresh Duration `yaml:"jwks_refresh"` // default 1h
	Issuer      string   `yaml:"issuer"`       // checked when set
	Audience    string   `yaml:"audience"`     // checked when set
	TenantClaim string   `yaml:"tenant_claim"` // default tenant_id
	Leeway      Duration `yaml:"leeway"`       // default 30s
	Algorithms  []string `yaml:"algorithms"`   // optional allowlist
	CacheSize   int      `yaml:"cache_size"`   // verified-token cache entries, default 10000
}

// Tenant is one static registry entry.
type Tenant struct {
	ID     string `yaml:"id"`
	Slug   string `yaml:"slug"`
	Active *bool  `yaml:"active"` // default true
}

// IsActive reports the entry's active flag, true when unset.
func (t Tenant) IsActive() bool { return t.Active == nil || *t.Active }

// Registry configures the dynamic tenant registry.
type Registry struct {
	Postgres      SecretURL `yaml:"postgres"`       // table tenantgate.tenants
	Redis         SecretURL `yaml:"redis"`          // optional shared cache
	TTL           Duration  `yaml:"ttl"`            // default 30s
	WatchInterval Duration  `yaml:"watch_interval"` // suspension re-check of connected tenants, default ttl
}

// Admin is the HTTP listener for /metrics, /healthz and /readyz.
type Admin struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:9090
}

// Audit configures audit events.
type Audit struct {
	File       string `yaml:"file"`       // JSON lines; empty = stderr log only
	Statements bool   `yaml:"statements"` // include statement text, not only its digest
}

// Metrics configures Prometheus metrics.
type Metrics struct {
	TenantLabel bool `yaml:"tenant_label"` // add a tenant label to per-request series
	MaxTenants  int  `yaml:"max_tenants"`  // distinct tenant label values before "other", default 1000
}

// Server holds process-wide timings.
type Server struct {
	DrainTimeout Duration `yaml:"drain_timeout"` // default 10s
}

// Listener is what every protocol listener shares.
type Listener struct {
	Listen           string   `yaml:"listen"`
	TLS              *TLS     `yaml:"tls"`
	MaxConnections   int      `yaml:"max_connections"`   // default 10000
	HandshakeTimeout Duration `yaml:"handshake_timeout"` // default 10s
	IdleTimeout      Duration `yaml:"idle_timeout"`      // 0 = none
	SNISuffix        string   `yaml:"sni_suffix"`        // <slug>.<suffix> must match the token's tenant
}

// TLS names a certificate and key for a listener.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Postgres configures the PostgreSQL listener.
type Postgres struct {
	Listener       `yaml:",inline"`
	Upstream       SecretURL `yaml:"upstream"`
	Databases      []string  `yaml:"databases"` // accepted database names, default the upstream's
	RequireTLS     bool      `yaml:"require_tls"`
	PoolMode       string    `yaml:"pool_mode"` // transaction (default) or session
	PoolSize       int       `yaml:"pool_size"` // default 20
	MinIdle        int       `yaml:"min_idle"`
	MaxLifetime    Duration  `yaml:"max_lifetime"`    // default 1h
	ConnectTimeout Duration  `yaml:"connect_timeout"` // default 5s
	PoolTimeout    Duration  `yaml:"pool_timeout"`    // wait for a free server connection, default 5s
	TenantSetting  string    `yaml:"tenant_setting"`  // default app.tenant_id
	DDL            string    `yaml:"ddl"`             // refuse (default) or allow
	AllowUnsafe    bool      `yaml:"allow_unsafe"`    // start despite a critical pg audit finding
	// EventLoop (default true) lets an event loop serve transaction pooling
	// (Linux, plaintext upstream); false serves every session from its own
	// goroutine.
	EventLoop *bool `yaml:"event_loop"`
	// TenantSignature turns on hardened mode: the proxy also sets an HMAC
	// of the tenant id, which the policies check (docs/postgres.md).
	TenantSignature *TenantSignature `yaml:"tenant_signature"`
}

// TenantSignature configures PostgreSQL's hardened mode.
type TenantSignature struct {
	Key     Secret `yaml:"key"`     // HMAC-SHA256 key, at least 32 bytes
	Setting string `yaml:"setting"` // default: the tenant setting's prefix + tenant_sig
}

// Redis configures the Redis listener.
type Redis struct {
	Listener  `yaml:",inline"`
	Upstream  SecretURL  `yaml:"upstream"`
	KeyPrefix string     `yaml:"key_prefix"` // default t:{tenant}:
	RateLimit *RateLimit `yaml:"rate_limit"`
	// UpstreamConnections is how many upstream connections per protocol
	// version the sessions share, each served by its own event loop; default 1.
	UpstreamConnections int `yaml:"upstream_connections"`
	// EventLoop (default true) lets event loops serve the sessions that need
	// only a shared connection (Linux, plaintext upstream); false serves
	// every session from its own goroutine.
	EventLoop *bool `yaml:"event_loop"`
}

// On reports whether an optional switch that defaults to true is on.
func On(b *bool) bool { return b == nil || *b }

// RateLimit is a per-tenant request rate limit.
type RateLimit struct {
	RequestsPerSecond int       `yaml:"requests_per_second"`
	Burst             int       `yaml:"burst"`
	Shared            SecretURL `yaml:"shared"` // optional Redis URL for a shared sliding window
}

// Mongo configures the MongoDB listener.
type Mongo struct {
	Listener        `yaml:",inline"`
	Upstream        SecretURL `yaml:"upstream"`
	Mode            string    `yaml:"mode"`              // database (default) or field
	DatabaseName    string    `yaml:"database_template"` // default {db}__{tenant}
	TenantField     string    `yaml:"tenant_field"`      // default tenant_id
	MaxMessageBytes int       `yaml:"max_message_bytes"` // default 48 MB
}

// Bolt configures the Neo4j Bolt listener.
type Bolt struct {
	Listener      `yaml:",inline"`
	Upstream      SecretURL `yaml:"upstream"`
	Username      string    `yaml:"username"`
	Password      Secret    `yaml:"password"`
	Database      string    `yaml:"database"`
	Mode          string    `yaml:"mode"`           // label (default) or database
	LabelTemplate string    `yaml:"label_template"` // default Tenant_{tenant}
	Advertise     string    `yaml:"advertise"`      // address ROUTE replies give, default listen
	// DatabaseTemplate names each tenant's database in database mode,
	// default tenant-{tenant}.
	DatabaseTemplate string `yaml:"database_template"`
	// Procedures is the CALL allowlist: procedures that must YIELD node,
	// filtered to the tenant in label mode. Absent: the engine's default
	// (the fulltext and vector queryNodes); an empty list allows none.
	Procedures []string `yaml:"procedures"`
	// AllowSchema lets index and constraint commands through, for
	// operator tooling.
	AllowSchema bool `yaml:"allow_schema"`
}

// Load reads, expands, decodes, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, os.LookupEnv)
}

// Parse decodes data like Load, looking variables up with lookupEnv.
func Parse(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config: the file is empty")
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg := &Config{}
	d := decoder{lookupEnv: lookupEnv}
	if err := d.decode(root.Content[0], reflect.ValueOf(cfg).Elem(), ""); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Marshal prints the resolved config, secrets redacted.
func (c *Config) Marshal() ([]byte, error) { return yaml.Marshal(c) }

func (c *Config) setDefaults() {
	setDefault(&c.JWT.TenantClaim, "tenant_id")
	setDefault(&c.JWT.Leeway, Duration(30*time.Second))
	setDefault(&c.JWT.JWKSRefresh, Duration(time.Hour))
	setDefault(&c.JWT.CacheSize, 10000)
	setDefault(&c.Admin.Listen, "127.0.0.1:9090")
	setDefault(&c.Metrics.MaxTenants, 1000)
	setDefault(&c.Server.DrainTimeout, Duration(10*time.Second))
	for i := range c.Tenants {
		setDefault(&c.Tenants[i].Slug, c.Tenants[i].ID)
	}
	if r := c.Registry; r != nil {
		setDefault(&r.TTL, Duration(30*time.Second))
		setDefault(&r.WatchInterval, r.TTL)
	}
	if p := c.Postgres; p != nil {
		p.Listener.setDefaults()
		setDefault(&p.PoolMode, "transaction")
		setDefault(&p.PoolSize, 20)
		setDefault(&p.MaxLifetime, Duration(time.Hour))
		setDefault(&p.ConnectTimeout, Duration(5*time.Second))
		setDefault(&p.PoolTimeout, Duration(5*time.Second))
		setDefault(&p.TenantSetting, "app.tenant_id")
		setDefault(&p.DDL, "refuse")
		if ts := p.TenantSignature; ts != nil {
			prefix, _, _ := strings.Cut(p.TenantSetting, ".")
			setDefault(&ts.Setting, prefix+".tenant_sig")
		}
	}
	if r := c.Redis; r != nil {
		r.Listener.setDefaults()
		setDefault(&r.KeyPrefix, "t:{tenant}:")
		setDefault(&r.UpstreamConnections, 1)
	}
	if m := c.Mongo; m != nil {
		m.Listener.setDefaults()
		setDefault(&m.Mode, "database")
		setDefault(&m.DatabaseName, "{db}__{tenant}")
		setDefault(&m.TenantField, "tenant_id")
		setDefault(&m.MaxMessageBytes, 48_000_000)
	}
	if b := c.Bolt; b != nil {
		b.Listener.setDefaults()
		setDefault(&b.Mode, "label")
		setDefault(&b.LabelTemplate, "Tenant_{tenant}")
		setDefault(&b.DatabaseTemplate, "tenant-{tenant}")
		setDefault(&b.Advertise, b.Listen)
	}
}

func (l *Listener) setDefaults() {
	setDefault(&l.MaxConnections, 10000)
	setDefault(&l.HandshakeTimeout, Duration(10*time.Second))
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Listeners returns the protocol sections present, in a fixed order, with
// their config keys.
func (c *Config) Listeners() []NamedListener {
	var out []NamedListener
	if c.Postgres != nil {
		out = append(out, NamedListener{"postgres", &c.Postgres.Listener})
	}
	if c.Redis != nil {
		out = append(out, NamedListener{"redis", &c.Redis.Listener})
	}
	if c.Mongo != nil {
		out = append(out, NamedListener{"mongo", &c.Mongo.Listener})
	}
	if c.Bolt != nil {
		out = append(out, NamedListener{"bolt", &c.Bolt.Listener})
	}
	return out
}

// NamedListener is a protocol listener section and its key.
type NamedListener struct {
	Key string
	*Listener
}

// Validate checks values that decoding alone cannot.
func (c *Config) Validate() error {
	if err := c.validateJWT(); err != nil {
		return err
	}
	ids, slugs := map[string]bool{}, map[string]bool{}
	for i, t := range c.Tenants {
		key := fmt.Sprintf("tenants[%d]", i)
		if !validTenantID(t.ID) {
			return fieldError(key+".id", "%q is not a valid tenant id (1-63 characters: letters, digits, _ and -, starting with a letter or digit)", t.ID)
		}
		if ids[t.ID] {
			return fieldError(key+".id", "tenant %q is listed twice", t.ID)
		}
		if slugs[t.Slug] {
			return fieldError(key+".slug", "slug %q is listed twice", t.Slug)
		}
		ids[t.ID], slugs[t.Slug] = true, true
	}
	if r := c.Registry; r != nil {
		if r.Postgres == "" && r.Redis != "" {
			return fieldError("registry.redis", "is a cache for registry.postgres, which is not set")
		}
		if err := checkURL("registry.postgres", string(r.Postgres), "postgres", "postgresql"); err != nil {
			return err
		}
		if err := checkURL("registry.redis", string(r.Redis), "redis", "rediss"); err != nil {
			return err
		}
	}
	if c.Metrics.MaxTenants < 1 {
		return fieldError("metrics.max_tenants", "must be at least 1")
	}
	addrs := map[string]string{}
	if err := checkListen("admin.listen", c.Admin.Listen, addrs); err != nil {
		return err
	}
	for _, l := range c.Listeners() {
		if err := l.validate(l.Key, addrs); err != nil {
			return err
		}
	}
	if len(c.Listeners()) > 0 && !c.JWT.HasKeys() {
		return fieldError("jwt", "no verification key: set jwt.secret, jwt.public_keys or jwt.jwks_url")
	}
	return c.validateEngines()
}

// HasKeys reports whether any token verification key is configured.
func (j JWT) HasKeys() bool { return j.Secret != "" || len(j.PublicKeys) > 0 || j.JWKSURL != "" }

var knownAlgorithms = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func (c *Config) validateJWT() error {
	j := c.JWT
	if j.Secret != "" && len(j.Secret) < 32 {
		return fieldError("jwt.secret", "is %d bytes; use at least 32 random bytes", len(j.Secret))
	}
	for i, p := range j.PublicKeys {
		if _, err := os.Stat(p); err != nil {
			return fieldError(fmt.Sprintf("jwt.public_keys[%d]", i), "cannot read %s: %v", p, errors.Unwrap(err))
		}
	}
	if err := checkURL("jwt.jwks_url", j.JWKSURL, "https", "http"); err != nil {
		return err
	}
	for i, a := range j.Algorithms {
		if !slices.Contains(knownAlgorithms, a) {
			return fieldError(fmt.Sprintf("jwt.algorithms[%d]", i), "unknown algorithm %q (known: %v)", a, knownAlgorithms)
		}
	}
	if j.CacheSize < 1 {
		return fieldError("jwt.cache_size", "must be at least 1")
	}
	return nil
}

func (l *Listener) validate(key string, addrs map[string]string) error {
	if l.Listen == "" {
		return fieldError(key+".listen", "is required")
	}
	if err := checkListen(key+".listen", l.Listen, addrs); err != nil {
		return err
	}
	if l.TLS != nil {
		if l.TLS.Cert == "" || l.TLS.Key == "" {
			return fieldError(key+".tls", "needs both cert and key")
		}
		for _, f := range []struct{ k, p string }{{"cert", l.TLS.Cert}, {"key", l.TLS.Key}} {
			if _, err := os.Stat(f.p); err != nil {
				return fieldError(key+".tls."+f.k, "cannot read %s: %v", f.p, errors.Unwrap(err))
			}
		}
	}
	if l.MaxConnections < 1 {
		return fieldError(key+".max_connections", "must be at least 1")
	}
	return nil
}

func (c *Config) validateEngines() error {
	if p := c.Postgres; p != nil {
		if err := requireURL("postgres.upstream", string(p.Upstream), "postgres", "postgresql"); err != nil {
			return err
		}
		if !slices.Contains([]string{"transaction", "session"}, p.PoolMode) {
			return fieldError("postgres.pool_mode", "%q is not transaction or session", p.PoolMode)
		}
		if p.PoolSize < 1 {
			return fieldError("postgres.pool_size", "must be at least 1")
		}
		if p.MinIdle < 0 || p.MinIdle > p.PoolSize {
			return fieldError("postgres.min_idle", "must be between 0 and pool_size (%d)", p.PoolSize)
		}
		if !slices.Contains([]string{"refuse", "allow"}, p.DDL) {
			return fieldError("postgres.ddl", "%q is not refuse or allow", p.DDL)
		}
		if !validSettingName(p.TenantSetting) {
			return fieldError("postgres.tenant_setting", "%q is not a custom setting name like app.tenant_id", p.TenantSetting)
		}
		if p.RequireTLS && p.TLS == nil {
			return fieldError("postgres.require_tls", "needs postgres.tls")
		}
		if ts := p.TenantSignature; ts != nil {
			if len(ts.Key) < 32 {
				return fieldError("postgres.tenant_signature.key", "is %d bytes; use at least 32 random bytes", len(ts.Key))
			}
			// The guard refuses writes under the tenant setting's prefix only.
			prefix, _, _ := strings.Cut(p.TenantSetting, ".")
			if !validSettingName(ts.Setting) || !strings.HasPrefix(ts.Setting, prefix+".") || ts.Setting == p.TenantSetting {
				return fieldError("postgres.tenant_signature.setting", "%q must be another setting under %q, which the guard protects", ts.Setting, prefix+".")
			}
		}
	}
	if r := c.Redis; r != nil {
		if err := requireURL("redis.upstream", string(r.Upstream), "redis", "rediss", "unix"); err != nil {
			return err
		}
		if !containsTenant(r.KeyPrefix) {
			return fieldError("redis.key_prefix", "%q must contain {tenant}", r.KeyPrefix)
		}
		if rl := r.RateLimit; rl != nil && (rl.RequestsPerSecond < 1 || rl.Burst < 0) {
			return fieldError("redis.rate_limit", "requests_per_second must be at least 1 and burst not negative")
		}
		if r.UpstreamConnections < 1 || r.UpstreamConnections > 64 {
			return fieldError("redis.upstream_connections", "%d is not between 1 and 64", r.UpstreamConnections)
		}
	}
	if m := c.Mongo; m != nil {
		if err := requireURL("mongo.upstream", string(m.Upstream), "mongodb", "mongodb+srv"); err != nil {
			return err
		}
		if !slices.Contains([]string{"database", "field"}, m.Mode) {
			return fieldError("mongo.mode", "%q is not database or field", m.Mode)
		}
		if m.Mode == "database" && !containsTenant(m.DatabaseName) {
			return fieldError("mongo.database_template", "%q must contain {tenant}", m.DatabaseName)
		}
		if m.MaxMessageBytes < 1024 || m.MaxMessageBytes > 48_000_000 {
			return fieldError("mongo.max_message_bytes", "must be between 1024 and 48000000")
		}
	}
	if b := c.Bolt; b != nil {
		if err := requireURL("bolt.upstream", string(b.Upstream), "bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"); err != nil {
			return err
		}
		if !slices.Contains([]string{"label", "database"}, b.Mode) {
			return fieldError("bolt.mode", "%q is not label or database", b.Mode)
		}
		if !containsTenant(b.LabelTemplate) {
			return fieldError("bolt.label_template", "%q must contain {tenant}", b.LabelTemplate)
		}
		if _, _, err := net.SplitHostPort(b.Advertise); err != nil {
			return fieldError("bolt.advertise", "%q is not host:port", b.Advertise)
		}
		if err := checkBoltDatabaseTemplate(b.DatabaseTemplate); err != nil {
			return fieldError("bolt.database_template", "%q %s", b.DatabaseTemplate, err)
		}
		seen := map[string]bool{}
		for i, name := range b.Procedures {
			key := fmt.Sprintf("bolt.procedures[%d]", i)
			if !isProcedureName(name) {
				return fieldError(key, "%q is not a qualified procedure name like db.index.fulltext.queryNodes", name)
			}
			if seen[strings.ToLower(name)] {
				return fieldError(key, "%q is listed twice", name)
			}
			seen[strings.ToLower(name)] = true
		}
	}
	return nil
}

// checkBoltDatabaseTemplate checks what can be checked of a Neo4j database
// name before the tenant is known: {tenant} once, surrounded by lower-case
// letters, digits, dots and dashes, starting with a letter, not reserved,
// room for the id within 63 characters. (The engine checks each tenant's
// name at login.)
func checkBoltDatabaseTemplate(template string) error {
	if strings.Count(template, "{tenant}") != 1 {
		return errors.New("must contain {tenant} exactly once")
	}
	prefix, suffix, _ := strings.Cut(template, "{tenant}")
	for _, c := range prefix + suffix {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return errors.New("may hold only lower-case letters, digits, '.' and '-' around {tenant} (Neo4j database names)")
		}
	}
	switch {
	case prefix != "" && !(prefix[0] >= 'a' && prefix[0] <= 'z'):
		return errors.New("must start with a letter or with {tenant}")
	case strings.HasPrefix(prefix, "system"):
		return errors.New("must not start with system (reserved by Neo4j)")
	case len(prefix)+len(suffix) >= 63:
		return errors.New("leaves no room for the tenant id in 63 characters")
	}
	return nil
}

// isProcedureName reports whether name is a dotted Cypher procedure name:
// at least two parts, each a plain identifier.
func isProcedureName(name string) bool {
	parts := strings.Split(name, ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if p == "" || p[0] >= '0' && p[0] <= '9' {
			return false
		}
		for _, c := range p {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
				return false
			}
		}
	}
	return true
}
