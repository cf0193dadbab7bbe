package pg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Two tenants write the same primary keys into one table; each sees,
// updates and deletes only its own rows, through every query mode pgx has.
func TestTenantsAreIsolated(t *testing.T) {
	modes := []struct {
		name string
		mode pgx.QueryExecMode
	}{
		{"cache_statement", pgx.QueryExecModeCacheStatement},
		{"cache_describe", pgx.QueryExecModeCacheDescribe},
		{"describe_exec", pgx.QueryExecModeDescribeExec},
		{"exec", pgx.QueryExecModeExec},
		{"simple_protocol", pgx.QueryExecModeSimpleProtocol},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			env := newPGEnv(t, nil)
			ctx := context.Background()
			a, b := env.clientMode(tenantA, m.mode), env.clientMode(tenantB, m.mode)
			for i, name := range []string{"anvil", "rocket"} {
				mustExec(t, a, "INSERT INTO items (id, name) VALUES ($1, $2)", i+1, name)
			}
			for i, name := range []string{"widget", "gadget"} {
				mustExec(t, b, "INSERT INTO items (id, name) VALUES ($1, $2)", i+1, name)
			}
			if got := names(t, a); !slices.Equal(got, []string{"anvil", "rocket"}) {
				t.Fatalf("tenant A sees %v", got)
			}
			if got := names(t, b); !slices.Equal(got, []string{"widget", "gadget"}) {
				t.Fatalf("tenant B sees %v", got)
			}

			tag, err := a.Exec(ctx, "UPDATE items SET name = name || '!' WHERE id = $1", 1)
			if err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("update: %v, %v", tag, err)
			}
			tag, err = b.Exec(ctx, "DELETE FROM items WHERE id = $1", 2)
			if err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("delete: %v, %v", tag, err)
			}
			// Upserts stay within the tenant.
			mustExec(t, b, "INSERT INTO items (id, name) VALUES ($1, $2) ON CONFLICT (tenant_id, id) DO UPDATE SET name = excluded.name", 1, "widget2")

			// Naming the other tenant fails the policy's WITH CHECK.
			if _, err := a.Exec(ctx, "INSERT INTO items (tenant_id, id, name) VALUES ($1, 9, 'forged')", tenantB); err == nil {
				t.Fatal("INSERT naming another tenant succeeded")
			}
			if _, err := a.Exec(ctx, "UPDATE items SET tenant_id = $1 WHERE id = 1", tenantB); err == nil {
				t.Fatal("UPDATE moving a row to another tenant succeeded")
			}

			want := []string{"acme:anvil!", "acme:rocket", "globex:widget2"}
			if got := env.allRows(); !slices.Equal(got, want) {
				t.Fatalf("rows = %v, want %v", got, want)
			}
		})
	}
}

// Many clients of two tenants on two server connections, mixing query
// modes, transactions and errors: every read returns only the reader's rows.
func TestConcurrentTenantsShareFewConnections(t *testing.T) {
	eachServingMode(t, func(t *testing.T, mode func(*Options)) {
		env := newPGEnv(t, withMode(poolOf(2), mode))
		ctx := context.Background()
		modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for w := range 8 {
			tenant := []string{tenantA, tenantB}[w%2]
			c := env.clientMode(tenant, modes[w%len(modes)])
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 30 {
					id := w*1000 + i
					var err error
					switch i % 3 {
					case 0:
						_, err = c.Exec(ctx, "INSERT INTO items (id, name) VALUES ($1, $2)", id, tenant)
					case 1:
						err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
							if _, err := tx.Exec(ctx, "INSERT INTO items (id, name) VALUES ($1, $2)", id, tenant); err != nil {
								return err
							}
							_, err := tx.Exec(ctx, "SELECT 1/0") // fails: the insert rolls back
							return err
						})
						if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "22012" {
							err = nil
						}
					case 2:
						var rows pgx.Rows
						if rows, err = c.Query(ctx, "SELECT DISTINCT name FROM items"); err == nil {
							var got []string
							got, err = pgx.CollectRows(rows, pgx.RowTo[string])
							if err == nil && (len(got) > 1 || len(got) == 1 && got[0] != tenant) {
								err = fmt.Errorf("%s read %v", tenant, got)
							}
						}
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for _, row := range env.allRows() {
			if tenant, name, _ := strings.Cut(row, ":"); tenant != name {
				t.Fatalf("row %s crossed tenants", row)
			}
		}
	})
}

// A search_path that puts a look-alike set_config before pg_catalog's does
// not stop the proxy from applying the tenant, even for the next client of
// the server connection, whose tenant is applied while the previous
// client's search_path is still in effect.
func TestSearchPathCannotShadowSetConfig(t *testing.T) {
	env := newPGEnv(t, poolOf(1))
	admin := env.admin()
	role := proxyRole(t, env)
	for _, sql := range []string{
		"CREATE SCHEMA evil",
		"CREATE FUNCTION evil.set_config(text, text, boolean) RETURNS text LANGUAGE sql AS 'SELECT $2'",
		"GRANT USAGE ON SCHEMA evil TO " + role,
	} {
		mustExec(t, admin, sql)
	}
	cfg, err := pgx.ParseConfig(env.url(tenantA))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = "evil, pg_catalog, public"
	a, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	mustExec(t, a, "INSERT INTO public.items (id, name) VALUES (1, 'a')")
	b := env.client(tenantB)
	if got := tenantOf(t, b); got != tenantB {
		t.Fatalf("B runs with tenant %q", got)
	}
	if got := names(t, b); len(got) != 0 {
		t.Fatalf("B sees %v", got)
	}
}
