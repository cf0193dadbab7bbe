package pg

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Sessions of two tenants, few server connections, and a random mix of what
// moves a session between the event loop and its goroutine (COPY FROM
// STDIN, dials, waits for a connection) and what changes a connection's
// tenant or resets it (RESET ALL, DISCARD ALL), with simple, extended and
// pipelined statements and transactions committed or rolled back. After
// every step each session sees exactly its tenant's rows as a model of
// them says, in both serving modes.
func TestSessionsMovingBetweenServingModes(t *testing.T) {
	eachServingMode(t, func(t *testing.T, mode func(*Options)) {
		env := newPGEnv(t, withMode(func(o *Options) { o.PoolSize = 2; o.PoolTimeout = 10 * time.Second }, mode))
		admin := env.admin()
		mustExec(t, admin, "CREATE TABLE copy_sink (line text)")
		mustExec(t, admin, "GRANT INSERT ON copy_sink TO "+proxyRole(t, env))
		seed := time.Now().UnixNano()
		t.Logf("seed %d", seed)
		type tenantModel struct {
			mu   sync.Mutex
			rows map[int]string
		}
		models := map[string]*tenantModel{tenantA: {rows: map[int]string{}}, tenantB: {rows: map[int]string{}}}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 6 {
			tenant := []string{tenantA, tenantB}[w%2]
			c := env.client(tenant)
			m := models[tenant]
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(w)))
			wg.Go(func() {
				ctx := context.Background()
				next := w * 100000
				insert := func(exec func(id int, name string) error) error {
					next++
					name := fmt.Sprintf("%s-%d", tenant, next)
					m.mu.Lock()
					defer m.mu.Unlock()
					if err := exec(next, name); err != nil {
						return err
					}
					m.rows[next] = name
					return nil
				}
				for step := range 40 {
					var err error
					switch op := rng.IntN(7); op {
					case 0: // simple protocol
						err = insert(func(id int, name string) error {
							_, err := c.Exec(ctx, fmt.Sprintf("INSERT INTO items (id, name) VALUES (%d, '%s')", id, name), pgx.QueryExecModeSimpleProtocol)
							return err
						})
					case 1: // extended, prepared and cached by pgx
						err = insert(func(id int, name string) error {
							_, err := c.Exec(ctx, "INSERT INTO items (id, name) VALUES ($1, $2)", id, name)
							return err
						})
					case 2: // a pipeline of three inserts
						m.mu.Lock()
						b := &pgx.Batch{}
						ids := []int{next + 1, next + 2, next + 3}
						next += 3
						for _, id := range ids {
							b.Queue("INSERT INTO items (id, name) VALUES ($1, $2)", id, fmt.Sprintf("%s-%d", tenant, id))
						}
						if err = c.SendBatch(ctx, b).Close(); err == nil {
							for _, id := range ids {
								m.rows[id] = fmt.Sprintf("%s-%d", tenant, id)
							}
						}
						m.mu.Unlock()
					case 3: // a transaction, committed or rolled back
						commit := rng.IntN(2) == 0
						err = insert(func(id int, name string) error {
							tx, err := c.Begin(ctx)
							if err != nil {
								return err
							}
							if _, err := tx.Exec(ctx, "INSERT INTO items (id, name) VALUES ($1, $2)", id, name); err != nil {
								_ = tx.Rollback(ctx)
								return err
							}
							if !commit {
								if err := tx.Rollback(ctx); err != nil {
									return err
								}
								return errRolledBack
							}
							return tx.Commit(ctx)
						})
						if err == errRolledBack {
							err = nil
						}
					case 4: // COPY FROM STDIN (not into items: RLS refuses it there); the session's goroutine relays the data
						_, err = c.CopyFrom(ctx, pgx.Identifier{"copy_sink"}, []string{"line"}, pgx.CopyFromRows([][]any{{tenant}}))
					case 5: // what drivers run when a connection returns to their pool
						stmt := []string{"RESET ALL", "DISCARD ALL"}[rng.IntN(2)]
						_, err = c.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol)
						if err == nil && stmt == "DISCARD ALL" {
							err = c.DeallocateAll(ctx) // the driver forgets its statements too
						}
					case 6: // what the session sees
						m.mu.Lock()
						want := make([]string, 0, len(m.rows))
						for _, name := range m.rows {
							want = append(want, name)
						}
						m.mu.Unlock()
						slices.Sort(want)
						var got []string
						rows, qerr := c.Query(ctx, "SELECT name FROM items ORDER BY name")
						if qerr == nil {
							got, qerr = pgx.CollectRows(rows, pgx.RowTo[string])
						}
						switch {
						case qerr != nil:
							err = qerr
						case slices.ContainsFunc(got, func(name string) bool { return !strings.HasPrefix(name, tenant+"-") }):
							err = fmt.Errorf("%s sees another tenant's rows: %v", tenant, got)
						case !isSubset(want, got):
							err = fmt.Errorf("%s sees %v, its rows include %v", tenant, got, want)
						}
					}
					if err != nil {
						errs <- fmt.Errorf("worker %d (%s) step %d: %w", w, tenant, step, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			for _, r := range env.allRows() {
				if tenant, name, _ := strings.Cut(r, ":"); !strings.HasPrefix(name, tenant+"-") {
					t.Log("misplaced:", r)
				}
			}
		}
		for tenant, m := range models {
			want := make([]string, 0, len(m.rows))
			for _, name := range m.rows {
				want = append(want, name)
			}
			slices.Sort(want)
			if got := queryStrings(t, env.client(tenant), "SELECT name FROM items ORDER BY name"); !slices.Equal(got, want) {
				t.Errorf("%s ends with %d rows, want %d", tenant, len(got), len(want))
			}
		}
	})
}

var errRolledBack = fmt.Errorf("rolled back")

// isSubset reports whether every element of want (sorted) is in got (sorted).
func isSubset(want, got []string) bool {
	for _, w := range want {
		if _, found := slices.BinarySearch(got, w); !found {
			return false
		}
	}
	return true
}
