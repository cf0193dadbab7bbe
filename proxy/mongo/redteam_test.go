package mongo

import (
	"reflect"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestRedteamFieldMode runs acme's attacks on globex's documents through the
// proxy in field mode: each may fail or succeed, but its reply must not show
// globex's document and globex's document must stay as it was.
func TestRedteamFieldMode(t *testing.T) {
	f := newFieldFixture(t)
	if _, err := f.upstreamShared.UpdateOne(ctxT(t), bson.D{{Key: "_id", Value: "g1"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "secret", Value: "S3CR3T"}}}}); err != nil {
		t.Fatal(err)
	}
	before := f.upstream(t)
	if before["g1"]["tenant_id"] != "globex" {
		t.Fatalf("fixture: g1 = %v", before["g1"])
	}
	tf := "tenant_id"
	cases := []struct {
		name string
		cmd  bson.D
	}{
		{"find expr getField literal", bson.D{{Key: "find", Value: "docs"}, {Key: "filter", Value: bson.D{{Key: "$expr", Value: bson.D{{Key: "$eq", Value: bson.A{bson.D{{Key: "$getField", Value: bson.D{{Key: "field", Value: bson.D{{Key: "$literal", Value: tf}}}, {Key: "input", Value: "$$ROOT"}}}}, "globex"}}}}}}}},
		{"find or escape", bson.D{{Key: "find", Value: "docs"}, {Key: "filter", Value: bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: tf, Value: "globex"}}, bson.D{{Key: "_id", Value: "g1"}}}}}}}},
		{"find let var", bson.D{{Key: "find", Value: "docs"}, {Key: "filter", Value: bson.D{{Key: "$expr", Value: bson.D{{Key: "$eq", Value: bson.A{"$" + tf, "$$t"}}}}}}, {Key: "let", Value: bson.D{{Key: "t", Value: "globex"}}}}},
		{"find where", bson.D{{Key: "find", Value: "docs"}, {Key: "filter", Value: bson.D{{Key: "$where", Value: "true"}}}}},
		{"find nested where", bson.D{{Key: "find", Value: "docs"}, {Key: "filter", Value: bson.D{{Key: "$and", Value: bson.A{bson.D{{Key: "$where", Value: "true"}}}}}}}},
		{"find expr function", bson.D{{Key: "find", Value: "docs"}, {Key: "filter", Value: bson.D{{Key: "$expr", Value: bson.D{{Key: "$function", Value: bson.D{{Key: "body", Value: "function(){return true}"}, {Key: "args", Value: bson.A{}}, {Key: "lang", Value: "js"}}}}}}}}},
		{"find natural hint", bson.D{{Key: "find", Value: "docs"}, {Key: "hint", Value: bson.D{{Key: "$natural", Value: 1}}}}},
		{"find collation strength", bson.D{{Key: "find", Value: "docs"}, {Key: "collation", Value: bson.D{{Key: "locale", Value: "en"}, {Key: "strength", Value: 1}}}}},
		{"find collation simple extra", bson.D{{Key: "find", Value: "docs"}, {Key: "collation", Value: bson.D{{Key: "locale", Value: "simple"}, {Key: "strength", Value: 1}}}}},
		{"find filter twice", bson.D{{Key: "find", Value: "docs"}, {Key: "filter", Value: bson.D{}}, {Key: "filter", Value: bson.D{}}}},
		{"find filter null", bson.D{{Key: "find", Value: "docs"}, {Key: "filter", Value: nil}}},
		{"find db twice", bson.D{{Key: "find", Value: "docs"}, {Key: "$db", Value: "other"}}},
		{"count query null", bson.D{{Key: "count", Value: "docs"}, {Key: "query", Value: nil}}},
		{"count filter key", bson.D{{Key: "count", Value: "docs"}, {Key: "filter", Value: bson.D{{Key: tf, Value: "globex"}}}}},
		{"distinct tenant field", bson.D{{Key: "distinct", Value: "docs"}, {Key: "key", Value: tf}}},
		{"distinct _id", bson.D{{Key: "distinct", Value: "docs"}, {Key: "key", Value: "_id"}}},
		{"aggregate documents", bson.D{{Key: "aggregate", Value: 1}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$documents", Value: bson.A{bson.D{}}}}}}, {Key: "cursor", Value: bson.D{}}}},
		{"aggregate documents on coll", bson.D{{Key: "aggregate", Value: "docs"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$documents", Value: bson.A{bson.D{}}}}}}, {Key: "cursor", Value: bson.D{}}}},
		{"aggregate facet out", bson.D{{Key: "aggregate", Value: "docs"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$facet", Value: bson.D{{Key: "x", Value: bson.A{bson.D{{Key: "$out", Value: "docs"}}}}}}}}}, {Key: "cursor", Value: bson.D{}}}},
		{"aggregate set tenant then lookup", bson.D{{Key: "aggregate", Value: "docs"}, {Key: "pipeline", Value: bson.A{
			bson.D{{Key: "$set", Value: bson.D{{Key: tf, Value: "globex"}}}},
			bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: "docs"}, {Key: "localField", Value: tf}, {Key: "foreignField", Value: tf}, {Key: "as", Value: "j"}}}},
		}}, {Key: "cursor", Value: bson.D{}}}},
		{"aggregate lookup let expr", bson.D{{Key: "aggregate", Value: "docs"}, {Key: "pipeline", Value: bson.A{
			bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: "docs"}, {Key: "let", Value: bson.D{{Key: "t", Value: "globex"}}}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$match", Value: bson.D{{Key: "$expr", Value: bson.D{{Key: "$eq", Value: bson.A{"$" + tf, "$$t"}}}}}}}}}, {Key: "as", Value: "j"}}}},
		}}, {Key: "cursor", Value: bson.D{}}}},
		{"aggregate lookup from db", bson.D{{Key: "aggregate", Value: "docs"}, {Key: "pipeline", Value: bson.A{
			bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: bson.D{{Key: "db", Value: f.db}, {Key: "coll", Value: "docs"}}}, {Key: "pipeline", Value: bson.A{}}, {Key: "as", Value: "j"}}}},
		}}, {Key: "cursor", Value: bson.D{}}}},
		{"aggregate lookup documents only", bson.D{{Key: "aggregate", Value: "docs"}, {Key: "pipeline", Value: bson.A{
			bson.D{{Key: "$lookup", Value: bson.D{{Key: "pipeline", Value: bson.A{bson.D{{Key: "$documents", Value: bson.A{bson.D{}}}}}}, {Key: "as", Value: "j"}}}},
		}}, {Key: "cursor", Value: bson.D{}}}},
		{"aggregate graphLookup tenant hop", bson.D{{Key: "aggregate", Value: "docs"}, {Key: "pipeline", Value: bson.A{
			bson.D{{Key: "$graphLookup", Value: bson.D{{Key: "from", Value: "docs"}, {Key: "startWith", Value: "globex"}, {Key: "connectFromField", Value: tf}, {Key: "connectToField", Value: tf}, {Key: "as", Value: "j"}}}},
		}}, {Key: "cursor", Value: bson.D{}}}},
		{"aggregate unionWith in facet", bson.D{{Key: "aggregate", Value: "docs"}, {Key: "pipeline", Value: bson.A{
			bson.D{{Key: "$facet", Value: bson.D{{Key: "x", Value: bson.A{bson.D{{Key: "$unionWith", Value: "docs"}}}}}}},
		}}, {Key: "cursor", Value: bson.D{}}}},
		{"aggregate group root", bson.D{{Key: "aggregate", Value: "docs"}, {Key: "pipeline", Value: bson.A{
			bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}, {Key: "all", Value: bson.D{{Key: "$push", Value: "$$ROOT"}}}}}},
		}}, {Key: "cursor", Value: bson.D{}}}},
		{"aggregate pipeline twice", bson.D{{Key: "aggregate", Value: "docs"}, {Key: "pipeline", Value: bson.A{}}, {Key: "pipeline", Value: bson.A{}}, {Key: "cursor", Value: bson.D{}}}},
		{"aggregate collStats", bson.D{{Key: "aggregate", Value: "docs"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$collStats", Value: bson.D{{Key: "count", Value: bson.D{}}}}}}}, {Key: "cursor", Value: bson.D{}}}},
		{"update set tenant", bson.D{{Key: "update", Value: "docs"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: tf, Value: "globex"}}}}}, {Key: "multi", Value: true}}}}}},
		{"update set tenant dotted", bson.D{{Key: "update", Value: "docs"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: tf + ".x", Value: 1}}}}}}}}}},
		{"update rename into tenant", bson.D{{Key: "update", Value: "docs"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.D{{Key: "$rename", Value: bson.D{{Key: "tag", Value: tf}}}}}}}}}},
		{"update pipeline setField", bson.D{{Key: "update", Value: "docs"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.A{bson.D{{Key: "$replaceWith", Value: bson.D{{Key: "$setField", Value: bson.D{{Key: "field", Value: tf}, {Key: "input", Value: "$$ROOT"}, {Key: "value", Value: "globex"}}}}}}}}}}}}},
		{"update replacement other tenant", bson.D{{Key: "update", Value: "docs"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: "g1"}}}, {Key: "u", Value: bson.D{{Key: "v", Value: 99}, {Key: tf, Value: "globex"}}}, {Key: "upsert", Value: true}}}}}},
		{"update upsert expr id g1", bson.D{{Key: "update", Value: "docs"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: "g1"}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 99}}}}}, {Key: "upsert", Value: true}}}}}},
		{"update q twice", bson.D{{Key: "update", Value: "docs"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{}}, {Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 99}}}}}, {Key: "multi", Value: true}}}}}},
		{"update arrayFilters", bson.D{{Key: "update", Value: "docs"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "arr.$[e]", Value: 1}}}}}, {Key: "arrayFilters", Value: bson.A{bson.D{{Key: "e", Value: bson.D{{Key: "$where", Value: "1"}}}}}}}}}}},
		{"update collation stmt", bson.D{{Key: "update", Value: "docs"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 99}}}}}, {Key: "multi", Value: true}, {Key: "collation", Value: bson.D{{Key: "locale", Value: "en"}, {Key: "strength", Value: 2}}}}}}}},
		{"delete q null", bson.D{{Key: "delete", Value: "docs"}, {Key: "deletes", Value: bson.A{bson.D{{Key: "q", Value: nil}, {Key: "limit", Value: 0}}}}}},
		{"delete q missing", bson.D{{Key: "delete", Value: "docs"}, {Key: "deletes", Value: bson.A{bson.D{{Key: "limit", Value: 0}}}}}},
		{"findAndModify new fields", bson.D{{Key: "findAndModify", Value: "docs"}, {Key: "query", Value: bson.D{{Key: "_id", Value: "g1"}}}, {Key: "update", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 7}}}}}, {Key: "new", Value: true}, {Key: "fields", Value: bson.D{{Key: tf, Value: 1}}}}},
		{"findAndModify remove", bson.D{{Key: "findAndModify", Value: "docs"}, {Key: "query", Value: bson.D{{Key: tf, Value: "globex"}}}, {Key: "remove", Value: true}}},
		{"findandmodify upsert replacement", bson.D{{Key: "findandmodify", Value: "docs"}, {Key: "query", Value: bson.D{{Key: "_id", Value: "g1"}}}, {Key: "update", Value: bson.D{{Key: "v", Value: 5}}}, {Key: "upsert", Value: true}}},
		{"insert other tenant", bson.D{{Key: "insert", Value: "docs"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: "x1"}, {Key: tf, Value: "globex"}}}}}},
		{"insert tenant twice", bson.D{{Key: "insert", Value: "docs"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: "x2"}, {Key: tf, Value: "acme"}, {Key: tf, Value: "globex"}}}}}},
		{"bulkWrite", bson.D{{Key: "bulkWrite", Value: 1}, {Key: "ops", Value: bson.A{bson.D{{Key: "delete", Value: 0}, {Key: "filter", Value: bson.D{}}, {Key: "multi", Value: true}}}}, {Key: "nsInfo", Value: bson.A{bson.D{{Key: "ns", Value: f.db + ".docs"}}}}}},
		{"mapReduce", bson.D{{Key: "mapReduce", Value: "docs"}, {Key: "map", Value: "function(){emit(1,1)}"}, {Key: "reduce", Value: "function(k,v){return 1}"}, {Key: "out", Value: bson.D{{Key: "inline", Value: 1}}}}},
		{"getMore forged", bson.D{{Key: "getMore", Value: int64(12345)}, {Key: "collection", Value: "docs"}}},
		{"killCursors forged", bson.D{{Key: "killCursors", Value: "docs"}, {Key: "cursors", Value: bson.A{int64(12345)}}}},
		{"collStats", bson.D{{Key: "collStats", Value: "docs"}}},
		{"dbStats", bson.D{{Key: "dbStats", Value: 1}}},
		{"explain find", bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: "docs"}, {Key: "filter", Value: bson.D{{Key: tf, Value: "globex"}}}}}, {Key: "verbosity", Value: "executionStats"}}},
		{"create view", bson.D{{Key: "create", Value: "v"}, {Key: "viewOn", Value: "docs"}, {Key: "pipeline", Value: bson.A{}}}},
		{"createIndexes partial", bson.D{{Key: "createIndexes", Value: "docs"}, {Key: "indexes", Value: bson.A{bson.D{{Key: "key", Value: bson.D{{Key: "v", Value: 1}}}, {Key: "name", Value: "p"}, {Key: "partialFilterExpression", Value: bson.D{{Key: tf, Value: "globex"}}}}}}}},
		{"drop", bson.D{{Key: "drop", Value: "docs"}}},
		{"createIndexes ttl", bson.D{{Key: "createIndexes", Value: "docs"}, {Key: "indexes", Value: bson.A{bson.D{{Key: "key", Value: bson.D{{Key: "v", Value: 1}}}, {Key: "name", Value: "ttl"}, {Key: "expireAfterSeconds", Value: 0}}}}}},
	}
	db := f.p.client("acme").Database(f.db)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			var reply bson.Raw
			reply, err := db.RunCommand(ctx, tc.cmd).Raw()
			if err == nil {
				s := reply.String()
				if strings.Contains(s, "S3CR3T") || strings.Contains(s, `"g1"`) && !strings.Contains(tc.cmd.String(), `"g1"`) || strings.Contains(s, "globex") && !strings.Contains(tc.cmd.String(), "globex") {
					t.Errorf("reply shows globex's data: %s", s)
				}
			}
			after := f.upstream(t)
			if !reflect.DeepEqual(after["g1"], before["g1"]) {
				t.Errorf("globex's document changed: %v -> %v", before["g1"], after["g1"])
			}
			for id, d := range after {
				if d[tf] == "globex" && id != "g1" {
					t.Errorf("acme created a globex document %v", d)
				}
			}
			for id, d := range before {
				if d[tf] == "acme" && after[id] != nil && after[id][tf] != "acme" {
					t.Errorf("acme's document %s moved to %v", id, after[id][tf])
				}
			}
		})
	}
}

// TestRedteamFieldSharedCollectionOptions: in field mode a collection is
// shared, so options that act on all its documents are refused: a TTL index
// or a TTL/capped collection would delete other tenants' documents, a
// validator would reject their writes.
func TestRedteamFieldSharedCollectionOptions(t *testing.T) {
	f := newFieldFixture(t)
	db := f.p.client("acme").Database(f.db)
	cases := []struct {
		name string
		cmd  bson.D
	}{
		{"ttl index", bson.D{{Key: "createIndexes", Value: "docs"}, {Key: "indexes", Value: bson.A{bson.D{{Key: "key", Value: bson.D{{Key: "v", Value: 1}}}, {Key: "name", Value: "ttl"}, {Key: "expireAfterSeconds", Value: 0}}}}}},
		{"capped", bson.D{{Key: "create", Value: "c1"}, {Key: "capped", Value: true}, {Key: "size", Value: 4096}, {Key: "max", Value: 1}}},
		{"validator", bson.D{{Key: "create", Value: "c2"}, {Key: "validator", Value: bson.D{{Key: "tenant_id", Value: "acme"}}}}},
		{"clustered ttl", bson.D{{Key: "create", Value: "c3"}, {Key: "clusteredIndex", Value: bson.D{{Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "unique", Value: true}}}, {Key: "expireAfterSeconds", Value: 1}}},
		{"timeseries", bson.D{{Key: "create", Value: "c4"}, {Key: "timeseries", Value: bson.D{{Key: "timeField", Value: "t"}}}, {Key: "expireAfterSeconds", Value: 1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, db.RunCommand(ctxT(t), tc.cmd).Err(), codeUnauthorized)
		})
	}
	// A plain create still passes.
	if err := db.RunCommand(ctxT(t), bson.D{{Key: "create", Value: "plain"}}).Err(); err != nil {
		t.Fatalf("plain create: %v", err)
	}
	if got := f.upstream(t)["g1"]; got == nil || got["tenant_id"] != "globex" {
		t.Fatalf("globex's document: %v", got)
	}
}

// TestRedteamDatabaseMode: acme tries to reach globex's database by name
// tricks; nothing may show or change globex's document.
func TestRedteamDatabaseMode(t *testing.T) {
	p := startProxy(t, Options{Mode: ModeDatabase})
	ctx := ctxT(t)
	db := uniqueDB()
	if _, err := p.client("globex").Database(db).Collection("docs").InsertOne(ctx, bson.D{{Key: "_id", Value: "g1"}, {Key: "v", Value: "S3CR3T"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.client("acme").Database(db).Collection("docs").InsertOne(ctx, bson.D{{Key: "_id", Value: "a1"}}); err != nil {
		t.Fatal(err)
	}
	gdb := db + "__globex"
	cases := []struct {
		name, db string
		cmd      bson.D
	}{
		{"db with separator", gdb, bson.D{{Key: "find", Value: "docs"}}},
		{"db upper case", strings.ToUpper(db), bson.D{{Key: "find", Value: "docs"}}},
		{"admin", "admin", bson.D{{Key: "find", Value: "docs"}}},
		{"Admin case", "Admin", bson.D{{Key: "find", Value: "docs"}}},
		{"db trailing underscore", db + "_", bson.D{{Key: "find", Value: "docs"}}},
		{"lookup from db coll", db, bson.D{{Key: "aggregate", Value: "docs"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: bson.D{{Key: "db", Value: gdb}, {Key: "coll", Value: "docs"}}}, {Key: "pipeline", Value: bson.A{}}, {Key: "as", Value: "j"}}}}}}, {Key: "cursor", Value: bson.D{}}}},
		{"unionWith db", db, bson.D{{Key: "aggregate", Value: "docs"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$unionWith", Value: bson.D{{Key: "db", Value: gdb}, {Key: "coll", Value: "docs"}}}}}}, {Key: "cursor", Value: bson.D{}}}},
		{"out to other db", db, bson.D{{Key: "aggregate", Value: "docs"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$out", Value: bson.D{{Key: "db", Value: gdb}, {Key: "coll", Value: "docs"}}}}}}, {Key: "cursor", Value: bson.D{}}}},
		{"merge into other db", db, bson.D{{Key: "aggregate", Value: "docs"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "db", Value: gdb}, {Key: "coll", Value: "docs"}}}}}}}}, {Key: "cursor", Value: bson.D{}}}},
		{"rename across", "admin", bson.D{{Key: "renameCollection", Value: db + ".docs"}, {Key: "to", Value: gdb + ".docs"}, {Key: "dropTarget", Value: true}}},
		{"rename from other", "admin", bson.D{{Key: "renameCollection", Value: gdb + ".docs"}, {Key: "to", Value: db + ".stolen"}}},
		{"copydb", "admin", bson.D{{Key: "copydb", Value: 1}, {Key: "fromdb", Value: gdb}, {Key: "todb", Value: db}}},
		{"listDatabases filter", "admin", bson.D{{Key: "listDatabases", Value: 1}, {Key: "filter", Value: bson.D{{Key: "name", Value: gdb}}}}},
		{"listDatabases nameOnly", "admin", bson.D{{Key: "listDatabases", Value: 1}, {Key: "nameOnly", Value: true}}},
		{"listDatabases", "admin", bson.D{{Key: "listDatabases", Value: 1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reply, err := p.client("acme").Database(tc.db).RunCommand(ctxT(t), tc.cmd).Raw()
			if err == nil {
				if s := reply.String(); strings.Contains(s, "S3CR3T") || strings.Contains(s, "globex") {
					t.Errorf("reply shows globex: %s", s)
				}
			}
			var got bson.M
			if err := p.direct().Database(gdb).Collection("docs").FindOne(ctxT(t), bson.D{{Key: "_id", Value: "g1"}}).Decode(&got); err != nil || got["v"] != "S3CR3T" {
				t.Fatalf("globex's document: %v %v", got, err)
			}
			if n, _ := p.direct().Database(gdb).Collection("docs").CountDocuments(ctxT(t), bson.D{}); n != 1 {
				t.Fatalf("globex's collection holds %d documents", n)
			}
		})
	}
}
