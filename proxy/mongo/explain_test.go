package mongo

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestDatabaseModeExplainNames: explain output names the server's database
// (the command it ran, namespaces); the tenant sees its own names only.
func TestDatabaseModeExplainNames(t *testing.T) {
	p := startProxy(t, Options{Mode: ModeDatabase})
	ctx := ctxT(t)
	db := uniqueDB()
	d := p.client("acme").Database(db)
	if _, err := d.Collection("docs").InsertOne(ctx, bson.D{{Key: "a", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	raw, err := d.RunCommand(ctx, bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: "docs"}, {Key: "filter", Value: bson.D{{Key: "a", Value: 1}}}}}}).Raw()
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	if s := raw.String(); strings.Contains(s, "__acme") {
		t.Fatalf("explain output shows the server's database name: %s", s)
	}
	// FerretDB repeats the command it ran, with its $db.
	if got, ok := raw.Lookup("command", "$db").StringValueOK(); ok && got != db {
		t.Fatalf("explain command.$db = %q, want %q", got, db)
	}
	// The upstream really answered with the mapped name (so the test checks
	// the mapping, not an absence).
	direct, err := p.direct().Database(db+"__acme").RunCommand(ctx, bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: "docs"}}}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(direct.String(), db+"__acme") {
		t.Skipf("the upstream's explain output names no database: %s", direct)
	}
}
