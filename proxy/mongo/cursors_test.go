package mongo

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestCursorTable(t *testing.T) {
	tab := NewCursorTable(2, time.Hour)
	tab.Open(0, "acme") // no cursor: not recorded
	tab.Open(1, "acme")
	tab.Open(2, "globex")
	for _, c := range []struct {
		id     int64
		tenant string
		want   bool
	}{{1, "acme", true}, {1, "globex", false}, {2, "globex", true}, {3, "acme", false}, {0, "acme", false}} {
		if got := tab.Owns(c.id, c.tenant); got != c.want {
			t.Errorf("Owns(%d, %s) = %v, want %v", c.id, c.tenant, got, c.want)
		}
	}
	tab.Open(3, "acme") // full: one entry is evicted
	if tab.Len() != 2 || !tab.Owns(3, "acme") {
		t.Fatalf("after eviction: len %d, owns 3: %v", tab.Len(), tab.Owns(3, "acme"))
	}
	tab.Close(3)
	if tab.Owns(3, "acme") {
		t.Fatal("closed cursor still owned")
	}
}

// TestCursorOwnership: a batched find pages through getMore; another
// tenant's getMore and killCursors with that cursor id are refused as
// CursorNotFound and leave the cursor intact.
func TestCursorOwnership(t *testing.T) {
	for _, mode := range []string{ModeDatabase, ModeField} {
		t.Run(mode, func(t *testing.T) {
			p := startProxy(t, Options{Mode: mode})
			ctx := ctxT(t)
			db := uniqueDB()
			acmeDB := p.client("acme").Database(db)
			globexDB := p.client("globex").Database(db)
			docs := make([]any, 100)
			for i := range docs {
				docs[i] = bson.D{{Key: "n", Value: i}}
			}
			if _, err := acmeDB.Collection("c").InsertMany(ctx, docs); err != nil {
				t.Fatal(err)
			}

			cur, err := acmeDB.RunCommandCursor(ctx, bson.D{{Key: "find", Value: "c"}, {Key: "batchSize", Value: 2}})
			if err != nil {
				t.Fatal(err)
			}
			id := cur.ID()
			if id == 0 {
				t.Fatal("no cursor opened")
			}
			stolen := globexDB.RunCommand(ctx, bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "c"}, {Key: "batchSize", Value: 1000}})
			wantCode(t, stolen.Err(), codeCursorNotFound)
			killed := globexDB.RunCommand(ctx, bson.D{{Key: "killCursors", Value: "c"}, {Key: "cursors", Value: bson.A{id}}})
			wantCode(t, killed.Err(), codeCursorNotFound)

			n := 0
			for cur.Next(ctx) {
				n++
			}
			if err := cur.Err(); err != nil || n != 100 {
				t.Fatalf("acme paged %d documents, err %v; want 100", n, err)
			}
			if p.engine.rewriter.cursors.Owns(id, "acme") {
				t.Fatal("exhausted cursor still recorded")
			}

			// The driver's own batched find works the same way.
			c, err := acmeDB.Collection("c").Find(ctx, bson.D{}, options.Find().SetBatchSize(7))
			if err != nil {
				t.Fatal(err)
			}
			var all []bson.M
			if err := c.All(ctx, &all); err != nil || len(all) != 100 {
				t.Fatalf("find batchSize 7: %d docs, %v", len(all), err)
			}
			for _, d := range all {
				if _, leaked := d["tenant_id"]; leaked {
					t.Fatalf("getMore returned the tenant field: %v", d)
				}
			}
		})
	}
}
