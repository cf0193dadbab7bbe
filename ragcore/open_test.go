package ragcore

import (
	"context"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/ragcore/store/vector"
)

func TestCredentialInjection(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		tests := []struct{ url, cred, want string }{
			{"redis://127.0.0.1:6379/0", "tok", "tok"},
			{"redis://:own@127.0.0.1:6379/0", "tok", "own"},
			{"redis://127.0.0.1:6379/0", "", ""},
		}
		for _, tt := range tests {
			opt, err := redisOptions(tt.url, tt.cred)
			if err != nil || opt.Password != tt.want || !opt.DisableIdentity || opt.MaintNotificationsConfig == nil || opt.MaintNotificationsConfig.IsEnabled() {
				t.Errorf("%s: password %q (err %v), want %q", tt.url, opt.Password, err, tt.want)
			}
		}
	})
	t.Run("postgres", func(t *testing.T) {
		tests := []struct{ url, cred, want string }{
			{"postgres://app@127.0.0.1:5432/db", "tok", "tok"},
			{"postgres://app:own@127.0.0.1:5432/db", "tok", "own"},
		}
		for _, tt := range tests {
			cfg, err := postgresConfig(tt.url, tt.cred)
			if err != nil || cfg.ConnConfig.Password != tt.want {
				t.Errorf("%s: password %q (err %v), want %q", tt.url, cfg.ConnConfig.Password, err, tt.want)
			}
		}
	})
	t.Run("mongo", func(t *testing.T) {
		tests := []struct {
			url, cred, user    string
			wantDB, wantMech   string
			wantUser, wantPass string
			wantSource         string
		}{
			{"mongodb://127.0.0.1:27017/", "tok", "", "ragcore", "PLAIN", "ragcore", "tok", "$external"},
			{"mongodb://127.0.0.1:27017/appdb", "tok", "svc", "appdb", "PLAIN", "svc", "tok", "$external"},
			{"mongodb://u:p@127.0.0.1:27017/appdb", "tok", "", "appdb", "", "u", "p", "appdb"},
			{"mongodb://127.0.0.1:27017/", "", "", "ragcore", "", "", "", ""},
		}
		for _, tt := range tests {
			opt, db, err := mongoOptions(tt.url, tt.cred, tt.user)
			if err != nil {
				t.Fatal(err)
			}
			var mech, user, pass, src string
			if opt.Auth != nil {
				mech, user, pass, src = opt.Auth.AuthMechanism, opt.Auth.Username, opt.Auth.Password, opt.Auth.AuthSource
			}
			if db != tt.wantDB || mech != tt.wantMech || user != tt.wantUser || pass != tt.wantPass || src != tt.wantSource {
				t.Errorf("%s: db=%q mech=%q user=%q pass=%q source=%q", tt.url, db, mech, user, pass, src)
			}
		}
	})
	t.Run("neo4j", func(t *testing.T) {
		tests := []struct{ url, cred, wantTarget, wantScheme, wantSecret string }{
			{"neo4j://127.0.0.1:7687", "tok", "neo4j://127.0.0.1:7687", "bearer", "tok"},
			{"neo4j://svc@127.0.0.1:7687", "tok", "neo4j://127.0.0.1:7687", "basic", "tok"},
			{"bolt://svc:pw@127.0.0.1:7687", "tok", "bolt://127.0.0.1:7687", "basic", "pw"},
			{"bolt://127.0.0.1:7687", "", "bolt://127.0.0.1:7687", "none", ""},
		}
		for _, tt := range tests {
			target, auth, err := neo4jTarget(tt.url, tt.cred)
			if err != nil {
				t.Fatal(err)
			}
			secret, _ := auth.Tokens["credentials"].(string)
			if target != tt.wantTarget || auth.Tokens["scheme"] != tt.wantScheme || secret != tt.wantSecret {
				t.Errorf("%s: target %q tokens %v", tt.url, target, auth.Tokens)
			}
		}
	})
}

func TestOpenNeedsSchemaAndAddresses(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, Settings{}); err == nil || !strings.Contains(err.Error(), "RAGCORE_REDIS") {
		t.Fatalf("Open without addresses: %v", err)
	}
	s := testSettings(t)
	if _, err := Open(ctx, s); err != nil {
		t.Fatalf("Open: %v", err)
	}
	kind, err := ChooseKind(ctx, s)
	if err != nil || (kind != vector.Array && kind != vector.PGVector) {
		t.Fatalf("ChooseKind = %q, %v", kind, err)
	}
}

func TestSchemaIsPlainSQL(t *testing.T) {
	all := strings.Join(Schema(vector.Array, 256), ";\n")
	for _, banned := range []string{"TRIGGER", "FUNCTION", "TEMP", "DO ", "SET ", "app."} {
		if strings.Contains(strings.ToUpper(all), strings.ToUpper(banned)) {
			t.Errorf("schema contains %q", banned)
		}
	}
	for _, table := range []string{"ragcore_chunk_vectors", "ragcore_entity_vectors", "ragcore_relation_vectors", "ragcore_entities", "ragcore_relations"} {
		if !strings.Contains(all, "CREATE TABLE IF NOT EXISTS "+table+" (\n    id text NOT NULL") || !strings.Contains(all, "CONSTRAINT "+table+"_pkey PRIMARY KEY (id)") {
			t.Errorf("no %s keyed by id", table)
		}
	}
}
