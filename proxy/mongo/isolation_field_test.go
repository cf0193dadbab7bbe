package mongo

import (
	"context"
	"sort"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// fieldFixture has acme and globex documents in one shared collection.
type fieldFixture struct {
	p              *testProxy
	db             string
	acme, globex   *mongo.Collection
	upstreamShared *mongo.Collection
}

func newFieldFixture(t *testing.T) *fieldFixture {
	t.Helper()
	p := startProxy(t, Options{Mode: ModeField})
	db := uniqueDB()
	f := &fieldFixture{
		p: p, db: db,
		acme:           p.client("acme").Database(db).Collection("docs"),
		globex:         p.client("globex").Database(db).Collection("docs"),
		upstreamShared: p.direct().Database(db).Collection("docs"),
	}
	ctx := ctxT(t)
	if _, err := f.acme.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "a1"}, {Key: "v", Value: 1}, {Key: "tag", Value: "x"}}, bson.D{{Key: "_id", Value: "a2"}, {Key: "v", Value: 2}, {Key: "tag", Value: "y"}},
	}); err != nil {
		t.Fatalf("acme insert: %v", err)
	}
	if _, err := f.globex.InsertOne(ctx, bson.D{{Key: "_id", Value: "g1"}, {Key: "v", Value: 1}, {Key: "tag", Value: "x"}}); err != nil {
		t.Fatalf("globex insert: %v", err)
	}
	return f
}

// upstream returns every stored document by _id, tenant field included.
func (f *fieldFixture) upstream(t *testing.T) map[string]bson.M {
	t.Helper()
	ctx := ctxT(t)
	cur, err := f.upstreamShared.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	out := map[string]bson.M{}
	for _, d := range docs {
		out[d["_id"].(string)] = d
	}
	return out
}

func ids(t *testing.T, c *mongo.Collection, filter any) []string {
	t.Helper()
	ctx := ctxT(t)
	cur, err := c.Find(ctx, filter)
	if err != nil {
		t.Fatalf("find %v: %v", filter, err)
	}
	var docs []bson.M
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range docs {
		if _, leaked := d["tenant_id"]; leaked {
			t.Fatalf("the tenant field reached the application: %v", d)
		}
		out = append(out, d["_id"].(string))
	}
	sort.Strings(out)
	return out
}

func TestFieldModeStampsAndScopes(t *testing.T) {
	f := newFieldFixture(t)
	ctx := ctxT(t)
	up := f.upstream(t)
	for id, tenant := range map[string]string{"a1": "acme", "a2": "acme", "g1": "globex"} {
		if up[id]["tenant_id"] != tenant {
			t.Fatalf("upstream %s carries tenant_id %v, want %s", id, up[id]["tenant_id"], tenant)
		}
	}
	if got := ids(t, f.acme, bson.D{}); len(got) != 2 {
		t.Fatalf("acme sees %v", got)
	}
	if got := ids(t, f.globex, bson.D{}); len(got) != 1 || got[0] != "g1" {
		t.Fatalf("globex sees %v", got)
	}
	n, err := f.globex.CountDocuments(ctx, bson.D{})
	if err != nil || n != 1 {
		t.Fatalf("globex count = %d, %v", n, err)
	}
	// No deadline: FerretDB v1 refuses distinct with maxTimeMS.
	vals, err := f.acme.Distinct(context.Background(), "tag", bson.D{}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if arr, _ := vals.Values(); len(arr) != 2 {
		t.Fatalf("acme distinct = %v", vals)
	}

	// Updates, upserts and deletes reach only the tenant's documents.
	res, err := f.globex.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 100}}}})
	if err != nil || res.MatchedCount != 1 {
		t.Fatalf("globex updateMany: %+v %v", res, err)
	}
	if _, err := f.acme.UpdateOne(ctx, bson.D{{Key: "_id", Value: "a3"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 3}}}}, options.UpdateOne().SetUpsert(true)); err != nil {
		t.Fatalf("acme upsert: %v", err)
	}
	// ragcore's status upsert: $set with a $setOnInsert of its own, twice.
	for range 2 {
		if _, err := f.globex.UpdateOne(ctx, bson.D{{Key: "_id", Value: "g2"}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 7}}}, {Key: "$setOnInsert", Value: bson.D{{Key: "created", Value: 1}}}},
			options.UpdateOne().SetUpsert(true)); err != nil {
			t.Fatalf("globex upsert with $setOnInsert: %v", err)
		}
	}
	if g2 := f.upstream(t)["g2"]; g2["tenant_id"] != "globex" || g2["created"] != int32(1) || g2["v"] != int32(7) {
		t.Fatalf("upserted g2 = %v", g2)
	}
	if _, err := f.globex.DeleteOne(ctx, bson.D{{Key: "_id", Value: "g2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.acme.ReplaceOne(ctx, bson.D{{Key: "_id", Value: "a2"}}, bson.D{{Key: "v", Value: 20}}); err != nil {
		t.Fatalf("acme replace: %v", err)
	}
	del, err := f.globex.DeleteMany(ctx, bson.D{{Key: "tag", Value: "x"}})
	if err != nil || del.DeletedCount != 1 {
		t.Fatalf("globex deleteMany: %+v %v", del, err)
	}
	var fam bson.M
	if err := f.acme.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: "a1"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}}).Decode(&fam); err != nil {
		t.Fatalf("acme findAndModify: %v", err)
	}
	if _, leaked := fam["tenant_id"]; leaked {
		t.Fatalf("findAndModify returned the tenant field: %v", fam)
	}
	up = f.upstream(t)
	want := map[string]bson.M{
		"a1": {"tenant_id": "acme", "v": int32(2)},
		"a2": {"tenant_id": "acme", "v": int32(20)},
		"a3": {"tenant_id": "acme", "v": int32(3)},
	}
	if len(up) != len(want) {
		t.Fatalf("upstream = %v", up)
	}
	for id, w := range want {
		for k, v := range w {
			if up[id][k] != v {
				t.Fatalf("upstream %s = %v, want %s=%v", id, up[id], k, v)
			}
		}
	}

	// Aggregations see only the tenant's documents.
	cur, err := f.acme.Aggregate(ctx, mongo.Pipeline{{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var groups []bson.M
	if err := cur.All(ctx, &groups); err != nil || len(groups) != 1 || groups[0]["n"] != int32(3) {
		t.Fatalf("acme $group = %v, %v", groups, err)
	}
}

// TestFieldModeTrickyFilters: nothing in a user filter widens the scope.
func TestFieldModeTrickyFilters(t *testing.T) {
	f := newFieldFixture(t)
	for name, filter := range map[string]any{
		"or at top level":   bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "tenant_id", Value: "acme"}}, bson.D{{Key: "v", Value: bson.D{{Key: "$gte", Value: 0}}}}}}},
		"ne":                bson.D{{Key: "tenant_id", Value: bson.D{{Key: "$ne", Value: "globex"}}}},
		"in":                bson.D{{Key: "tenant_id", Value: bson.D{{Key: "$in", Value: bson.A{"acme", "globex"}}}}},
		"exists":            bson.D{{Key: "tenant_id", Value: bson.D{{Key: "$exists", Value: true}}}},
		"regex":             bson.D{{Key: "tenant_id", Value: bson.Regex{Pattern: ".*"}}},
		"array":             bson.D{{Key: "tenant_id", Value: bson.A{"acme", "globex"}}},
		"other tenant":      bson.D{{Key: "tenant_id", Value: "acme"}},
		"duplicate key":     bson.D{{Key: "tenant_id", Value: "acme"}, {Key: "tenant_id", Value: "globex"}},
		"dotted path":       bson.D{{Key: "tenant_id.x", Value: bson.D{{Key: "$exists", Value: false}}}},
		"nor":               bson.D{{Key: "$nor", Value: bson.A{bson.D{{Key: "tenant_id", Value: "globex"}}}}},
		"and with override": bson.D{{Key: "$and", Value: bson.A{bson.D{{Key: "tenant_id", Value: "acme"}}}}},
	} {
		got := ids(t, f.globex, filter)
		for _, id := range got {
			if id != "g1" {
				t.Errorf("%s: globex saw %v", name, got)
			}
		}
	}
}

// TestFieldModeRefusals: what cannot be scoped is refused, and the other
// tenant's documents are neither returned nor changed.
func TestFieldModeRefusals(t *testing.T) {
	f := newFieldFixture(t)
	ctx := ctxT(t)
	before := f.upstream(t)
	db := f.globex.Database()
	cases := map[string]func() error{
		"insert naming another tenant": func() error {
			_, err := f.globex.InsertOne(ctx, bson.D{{Key: "_id", Value: "g9"}, {Key: "tenant_id", Value: "acme"}})
			return err
		},
		"$set of the tenant field": func() error {
			_, err := f.globex.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "tenant_id", Value: "acme"}}}})
			return err
		},
		"$unset of the tenant field": func() error {
			_, err := f.globex.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$unset", Value: bson.D{{Key: "tenant_id", Value: ""}}}})
			return err
		},
		"$rename onto the tenant field": func() error {
			_, err := f.globex.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$rename", Value: bson.D{{Key: "tag", Value: "tenant_id"}}}})
			return err
		},
		"replacement naming another tenant": func() error {
			_, err := f.globex.ReplaceOne(ctx, bson.D{{Key: "_id", Value: "g1"}}, bson.D{{Key: "tenant_id", Value: "acme"}})
			return err
		},
		"pipeline update": func() error {
			_, err := f.globex.UpdateMany(ctx, bson.D{}, mongo.Pipeline{{{Key: "$set", Value: bson.D{{Key: "v", Value: 0}}}}})
			return err
		},
		"$where": func() error {
			_, err := f.globex.Find(ctx, bson.D{{Key: "$where", Value: "true"}})
			return err
		},
		"$out": func() error {
			_, err := f.globex.Aggregate(ctx, mongo.Pipeline{{{Key: "$out", Value: "stolen"}}})
			return err
		},
		"$merge": func() error {
			_, err := f.globex.Aggregate(ctx, mongo.Pipeline{{{Key: "$merge", Value: bson.D{{Key: "into", Value: "docs"}}}}})
			return err
		},
		"$collStats": func() error {
			_, err := f.globex.Aggregate(ctx, mongo.Pipeline{{{Key: "$collStats", Value: bson.D{}}}})
			return err
		},
		"drop":         func() error { return f.globex.Drop(ctx) },
		"dropDatabase": func() error { return db.Drop(ctx) },
		"deleteIndexes": func() error {
			return f.globex.Indexes().DropAll(ctx)
		},
		"view": func() error {
			return db.CreateView(ctx, "v", "docs", mongo.Pipeline{})
		},
		"unknown command": func() error {
			return db.RunCommand(ctx, bson.D{{Key: "mapReduce", Value: "docs"}}).Err()
		},
		"admin database": func() error {
			return f.globex.Database().Client().Database("admin").RunCommand(ctx, bson.D{{Key: "find", Value: "system.users"}}).Err()
		},
	}
	for name, run := range cases {
		err := run()
		if err == nil {
			t.Errorf("%s: not refused", name)
			continue
		}
		var se mongo.ServerError
		if !asServer(err, &se) {
			t.Errorf("%s: not a server error: %v", name, err)
		}
	}
	for _, reason := range []string{reasonTenantField, reasonForbidden, reasonUnknownCommand, reasonNamespace} {
		if n := f.p.metric("tenantgate_refusals_total", "protocol", "mongo", "reason", reason); n == 0 {
			t.Errorf("no refusal counted with reason %s", reason)
		}
	}
	if n := f.p.metric("tenantgate_upstream_connections", "protocol", "mongo", "state", "active"); n < 2 {
		t.Errorf("upstream connections gauge = %v, want at least the two tenants' sessions", n)
	}
	after := f.upstream(t)
	if len(after) != len(before) {
		t.Fatalf("documents changed: before %v, after %v", before, after)
	}
	for id, d := range before {
		for k, v := range d {
			if after[id][k] != v {
				t.Fatalf("document %s changed: before %v, after %v", id, d, after[id])
			}
		}
	}
}

// TestFieldModeUniqueIndexPerTenant: a unique index is unique per tenant,
// so one tenant's value does not block (and so reveal) another's.
func TestFieldModeUniqueIndexPerTenant(t *testing.T) {
	f := newFieldFixture(t)
	ctx := ctxT(t)
	if _, err := f.acme.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)}); err != nil {
		t.Fatalf("createIndexes: %v", err)
	}
	if _, err := f.acme.InsertOne(ctx, bson.D{{Key: "_id", Value: "a-e"}, {Key: "email", Value: "x@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.globex.InsertOne(ctx, bson.D{{Key: "_id", Value: "g-e"}, {Key: "email", Value: "x@example.com"}}); err != nil {
		t.Fatalf("globex blocked by acme's unique value: %v", err)
	}
	if _, err := f.acme.InsertOne(ctx, bson.D{{Key: "_id", Value: "a-e2"}, {Key: "email", Value: "x@example.com"}}); err == nil {
		t.Fatal("the unique index does not hold within a tenant")
	}
}
