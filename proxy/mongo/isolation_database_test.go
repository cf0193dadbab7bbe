package mongo

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestDatabaseModeIsolation(t *testing.T) {
	p := startProxy(t, Options{Mode: ModeDatabase})
	ctx := ctxT(t)
	db := uniqueDB()
	acme, globex := p.client("acme").Database(db).Collection("docs"), p.client("globex").Database(db).Collection("docs")
	if _, err := acme.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "acme-1"}}, bson.D{{Key: "_id", Value: 2}, {Key: "v", Value: "acme-2"}}}); err != nil {
		t.Fatalf("acme insert: %v", err)
	}
	if _, err := globex.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "globex-1"}}}); err != nil {
		t.Fatalf("globex insert (same _id, other tenant): %v", err)
	}
	var got bson.M
	if err := globex.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got); err != nil || got["v"] != "globex-1" {
		t.Fatalf("globex find: %v %v", got, err)
	}
	n, err := acme.CountDocuments(ctx, bson.D{})
	if err != nil || n != 2 {
		t.Fatalf("acme count = %d, %v; want 2", n, err)
	}
	if _, err := globex.UpdateOne(ctx, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "x"}}}}, options.UpdateOne().SetUpsert(true)); err != nil {
		t.Fatalf("globex upsert: %v", err)
	}
	if _, err := acme.DeleteOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}

	// On the upstream, each tenant's documents sit in its own database.
	direct := p.direct()
	for tenant, want := range map[string][]string{"acme": {"acme-2"}, "globex": {"globex-1", "x"}} {
		cur, err := direct.Database(db+"__"+tenant).Collection("docs").Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			t.Fatal(err)
		}
		var docs []bson.M
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatal(err)
		}
		if len(docs) != len(want) {
			t.Fatalf("%s upstream docs = %v, want values %v", tenant, docs, want)
		}
		for i, d := range docs {
			if d["v"] != want[i] {
				t.Fatalf("%s upstream docs = %v, want values %v", tenant, docs, want)
			}
		}
	}
}

// TestDatabaseModeNames: names are mapped in and back, and what would reach
// another tenant's or the server's databases is refused.
func TestDatabaseModeNames(t *testing.T) {
	p := startProxy(t, Options{Mode: ModeDatabase})
	ctx := ctxT(t)
	db := uniqueDB()
	acme, globex := p.client("acme"), p.client("globex")
	if _, err := acme.Database(db).Collection("a").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := globex.Database(db+"g").Collection("a").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatal(err)
	}

	// listDatabases shows the tenant's databases only, under its names.
	names, err := acme.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, n := range names {
		if strings.Contains(n, "__") || n == db+"g" || n == "admin" {
			t.Fatalf("listDatabases leaked %q: %v", n, names)
		}
		seen = seen || n == db
	}
	if !seen {
		t.Fatalf("listDatabases lacks %s: %v", db, names)
	}

	// cursor.ns is the application's namespace.
	var reply bson.Raw
	if reply, err = acme.Database(db).RunCommand(ctx, bson.D{{Key: "find", Value: "a"}}).Raw(); err != nil {
		t.Fatal(err)
	}
	if ns := reply.Lookup("cursor", "ns").StringValue(); ns != db+".a" {
		t.Fatalf("cursor.ns = %q", ns)
	}

	// renameCollection maps both namespaces.
	if err := acme.Database("admin").RunCommand(ctx, bson.D{
		{Key: "renameCollection", Value: db + ".a"}, {Key: "to", Value: db + ".b"},
	}).Err(); err != nil {
		t.Fatalf("renameCollection: %v", err)
	}
	colls, err := p.direct().Database(db+"__acme").ListCollectionNames(ctx, bson.D{})
	if err != nil || len(colls) != 1 || colls[0] != "b" {
		t.Fatalf("upstream collections after rename: %v %v", colls, err)
	}

	for name, c := range map[string]struct {
		run  func() error
		code int32
	}{
		"another tenant's database": {func() error {
			return acme.Database(db+"g__globex").RunCommand(ctx, bson.D{{Key: "find", Value: "a"}}).Err()
		}, codeInvalidNamespace},
		"admin": {func() error {
			return acme.Database("admin").RunCommand(ctx, bson.D{{Key: "find", Value: "system.users"}}).Err()
		}, codeUnauthorized},
		"local": {func() error {
			return acme.Database("local").RunCommand(ctx, bson.D{{Key: "find", Value: "oplog.rs"}}).Err()
		}, codeUnauthorized},
		"too long": {func() error {
			return acme.Database(strings.Repeat("d", 60)).RunCommand(ctx, bson.D{{Key: "find", Value: "a"}}).Err()
		}, codeInvalidNamespace},
		"rename into another tenant": {func() error {
			return acme.Database("admin").RunCommand(ctx, bson.D{
				{Key: "renameCollection", Value: db + ".b"}, {Key: "to", Value: db + "g__globex.stolen"},
			}).Err()
		}, codeInvalidNamespace},
		"$out into another tenant": {func() error {
			_, err := acme.Database(db).Collection("b").Aggregate(ctx, bson.A{bson.D{{Key: "$out", Value: bson.D{{Key: "db", Value: db + "g__globex"}, {Key: "coll", Value: "x"}}}}})
			return err
		}, codeInvalidNamespace},
		"$currentOp": {func() error {
			_, err := acme.Database(db).Aggregate(ctx, bson.A{bson.D{{Key: "$currentOp", Value: bson.D{}}}})
			return err
		}, codeUnauthorized},
		"server admin command": {func() error {
			return acme.Database(db).RunCommand(ctx, bson.D{{Key: "serverStatus", Value: 1}}).Err()
		}, codeCommandNotFound},
		"mapReduce": {func() error {
			return acme.Database(db).RunCommand(ctx, bson.D{{Key: "mapReduce", Value: "b"}}).Err()
		}, codeCommandNotFound},
		"$where": {func() error {
			_, err := acme.Database(db).Collection("b").Find(ctx, bson.D{{Key: "$where", Value: "true"}})
			return err
		}, codeUnauthorized},
	} {
		err := c.run()
		if err == nil {
			t.Errorf("%s: not refused", name)
			continue
		}
		var se mongo.ServerError
		if !asServer(err, &se) || !se.HasErrorCode(int(c.code)) {
			t.Errorf("%s: want code %d, got %v", name, c.code, err)
		}
	}
	n, err := p.direct().Database(db+"g__globex").Collection("a").CountDocuments(ctx, bson.D{})
	if err != nil || n != 1 {
		t.Fatalf("globex's data changed: %d docs, %v", n, err)
	}
	gcolls, _ := p.direct().Database(db+"g__globex").ListCollectionNames(ctx, bson.D{})
	if len(gcolls) != 1 {
		t.Fatalf("globex's collections changed: %v", gcolls)
	}

	// Write errors name the application's database, not the mapped one.
	_, err = acme.Database(db).Collection("b").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	if err == nil {
		_, err = acme.Database(db).Collection("b").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	}
	if err == nil || strings.Contains(err.Error(), "__acme") {
		t.Fatalf("duplicate key error: %v", err)
	}

	// Error messages name the application's database, not the mapped one.
	err = acme.Database(db).RunCommand(ctx, bson.D{{Key: "create", Value: "b"}}).Err()
	if err == nil || strings.Contains(err.Error(), "__acme") || !strings.Contains(err.Error(), db+".b") {
		t.Fatalf("create of an existing collection: %v", err)
	}
}
