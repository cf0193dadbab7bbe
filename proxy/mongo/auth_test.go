package mongo

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/tenantgate/tenantgate/internal/proxytest"
)

func TestPlainPassword(t *testing.T) {
	for _, c := range []struct {
		payload string
		want    string
		ok      bool
	}{
		{"\x00user\x00tok", "tok", true},
		{"authz\x00user\x00tok", "tok", true},
		{"\x00\x00tok", "tok", true},
		{"\x00user\x00", "", false},
		{"user\x00tok", "", false},
		{"\x00user\x00tok\x00more", "", false},
	} {
		got, ok := plainPassword([]byte(c.payload))
		if got != c.want || ok != c.ok {
			t.Errorf("plainPassword(%q) = %q, %v; want %q, %v", c.payload, got, ok, c.want, c.ok)
		}
	}
}

// TestOIDCMachineFlow: the official driver's MONGODB-OIDC machine callback
// hands the JWT to the proxy (speculatively in hello, or in saslStart).
func TestOIDCMachineFlow(t *testing.T) {
	p := startProxy(t, Options{})
	calls := 0
	cred := options.Credential{
		AuthMechanism: "MONGODB-OIDC",
		OIDCMachineCallback: func(context.Context, *options.OIDCArgs) (*options.OIDCCredential, error) {
			calls++
			return &options.OIDCCredential{AccessToken: token(t, "globex")}, nil
		},
	}
	c := connect(t, options.Client().ApplyURI("mongodb://"+p.addr+"/").SetAuth(cred).SetServerSelectionTimeout(5*time.Second))
	ctx := ctxT(t)
	db := uniqueDB()
	if _, err := c.Database(db).Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatalf("insert over OIDC: %v", err)
	}
	n, err := p.direct().Database(db+"__globex").Collection("c").CountDocuments(ctx, bson.D{})
	if err != nil || n != 1 {
		t.Fatalf("upstream count %d, %v", n, err)
	}
	if calls == 0 {
		t.Fatal("the OIDC callback was never asked for a token")
	}
}

// TestBadTokenRefused: the driver's connection fails to authenticate.
func TestBadTokenRefused(t *testing.T) {
	p := startProxy(t, Options{})
	opts := options.Client().ApplyURI("mongodb://" + p.addr + "/").SetServerSelectionTimeout(2 * time.Second).
		SetAuth(options.Credential{AuthMechanism: "PLAIN", AuthSource: "$external", Username: "u", Password: "eyJ.bad.token"})
	c := connect(t, opts)
	err := c.Database("app").RunCommand(ctxT(t), bson.D{{Key: "find", Value: "c"}}).Err()
	if err == nil {
		t.Fatal("a bad token was accepted")
	}
}

// TestReauthenticateAsAnotherTenant: a connection that authenticates again
// as another tenant loses the first tenant's cursors and databases.
func TestReauthenticateAsAnotherTenant(t *testing.T) {
	p := startProxy(t, Options{})
	ctx := ctxT(t)
	db := uniqueDB()
	docs := []any{bson.D{{Key: "n", Value: 1}}, bson.D{{Key: "n", Value: 2}}, bson.D{{Key: "n", Value: 3}}}
	if _, err := p.client("acme").Database(db).Collection("c").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, p)
	plain := func(tenant string) {
		t.Helper()
		if r := c.command(0, cmd("saslStart", 1, "$external", bsoncore.AppendStringElement(nil, "mechanism", "PLAIN"),
			bsoncore.AppendBinaryElement(nil, "payload", 0, []byte("\x00\x00"+token(t, tenant))))); !okOf(r) {
			t.Fatal(r)
		}
	}
	plain("acme")
	r := c.command(0, cmd("find", "c", db, bsoncore.AppendInt32Element(nil, "batchSize", 1)))
	id, _ := r.Lookup("cursor", "id").Int64OK()
	if id == 0 {
		t.Fatalf("find: %v", r)
	}
	plain("globex")
	if r := c.command(0, cmd("getMore", id, db, bsoncore.AppendStringElement(nil, "collection", "c"))); codeOf(r) != codeCursorNotFound {
		t.Fatalf("getMore after re-authentication as globex: %v", r)
	}
	r = c.command(0, cmd("count", "c", db))
	if n, _ := r.Lookup("n").AsInt64OK(); n != 0 || !okOf(r) {
		t.Fatalf("globex counts acme's documents: %v", r)
	}
}

// TestOIDCReauthenticatesInPlace: when the token expires the proxy answers
// ReauthenticationRequired (391); the driver fetches a fresh token from its
// callback and authenticates again on the same connection, and the command
// succeeds, with the first connection's cursor still usable.
func TestOIDCReauthenticatesInPlace(t *testing.T) {
	p := startProxy(t, Options{})
	var calls atomic.Int32
	cred := options.Credential{
		AuthMechanism: "MONGODB-OIDC",
		OIDCMachineCallback: func(context.Context, *options.OIDCArgs) (*options.OIDCCredential, error) {
			calls.Add(1)
			return &options.OIDCCredential{AccessToken: proxytest.TokenFor(t, "globex", 2*time.Second)}, nil
		},
	}
	c := connect(t, options.Client().ApplyURI("mongodb://"+p.addr+"/").SetAuth(cred).
		SetServerSelectionTimeout(5*time.Second).SetMaxPoolSize(1))
	ctx := ctxT(t)
	coll := c.Database(uniqueDB()).Collection("c")
	docs := make([]any, 10)
	for i := range docs {
		docs[i] = bson.D{{Key: "i", Value: i}}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatalf("insert: %v", err)
	}
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(2))
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close(ctx)
	first := calls.Load()
	time.Sleep(3 * time.Second) // the 2 s token (no leeway configured) expires
	n, err := coll.CountDocuments(ctx, bson.D{})
	if err != nil || n != 10 {
		t.Fatalf("count after expiry = %d, %v; want the driver to re-authenticate and succeed", n, err)
	}
	if calls.Load() <= first {
		t.Error("the driver was never asked for a new token")
	}
	seen := 0
	for cur.Next(ctx) {
		seen++
	}
	if err := cur.Err(); err != nil || seen != 10 {
		t.Errorf("cursor across re-authentication: %d docs, %v", seen, err)
	}
	if got := p.metric("tenantgate_refusals_total", "protocol", "mongo", "reason", "expired"); got < 1 {
		t.Errorf("the 391 answer was not counted as an expired refusal (%v)", got)
	}
}
