package mongo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// mongoshResult is what the test script prints, one JSON line.
type mongoshResult struct {
	Inserted   string   `json:"inserted"`
	Count      int      `json:"count"`
	IDs        []string `json:"ids"`
	SeesField  bool     `json:"seesField"`
	Foreign    int      `json:"foreign"`    // documents found by the other tenant's _id
	DeletedAll int      `json:"deletedAll"` // deleteMany({}) after the checks
	WhereError string   `json:"whereError"`
}

// mongoshScript inserts one document with _id, reads everything back, looks
// for the other tenant's _id, tries a refused construct and, when wipe is
// set, deletes everything it can.
const mongoshScript = `
const c = db.getCollection("docs");
const out = {};
out.inserted = c.insertOne({_id: ID, v: ID}).insertedId;
const docs = c.find({}).sort({_id: 1}).toArray();
out.ids = docs.map(d => d._id);
out.seesField = docs.some(d => Object.keys(d).includes(FIELD));
out.count = c.countDocuments({});
out.foreign = c.countDocuments({$or: [{_id: OTHER}, {_id: {$in: [OTHER]}}]}) + c.find({_id: OTHER}).toArray().length;
try { c.find({$where: "true"}).toArray(); out.whereError = "none"; } catch (e) { out.whereError = e.message; }
out.deletedAll = WIPE ? c.deleteMany({}).deletedCount : 0;
print(JSON.stringify(out));
`

// runMongosh runs mongosh through the proxy as tenant, authenticating with
// PLAIN and the tenant's JWT, and decodes the script's JSON line.
func (p *testProxy) runMongosh(t *testing.T, bin, db, tenant, id, other string, wipe bool) mongoshResult {
	t.Helper()
	uri := fmt.Sprintf("mongodb://app:%s@%s/%s?authMechanism=PLAIN&authSource=%%24external&serverSelectionTimeoutMS=10000", token(t, tenant), p.addr, db)
	script := strings.NewReplacer("ID", jsString(id), "OTHER", jsString(other), "FIELD", jsString(DefaultTenantField), "WIPE", fmt.Sprint(wipe)).Replace(mongoshScript)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--quiet", "--norc", uri, "--eval", script)
	home := t.TempDir() // mongosh keeps logs and history under $HOME
	cmd.Env = append(os.Environ(), "HOME="+home, "DO_NOT_TRACK=1", "MONGOSH_NO_UPDATE_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mongosh as %s: %v\n%s", tenant, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "{") {
			t.Logf("mongosh as %s: %s", tenant, line)
			var r mongoshResult
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("mongosh output %q: %v", line, err)
			}
			return r
		}
	}
	t.Fatalf("mongosh as %s printed no result:\n%s", tenant, out)
	return mongoshResult{}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestMongosh drives the proxy with mongosh, a real client (Node driver),
// in both modes: insertOne/find/countDocuments work, the tenant field never
// shows, another tenant's documents are neither seen nor deleted, and a
// refusal reaches the shell as an error.
func TestMongosh(t *testing.T) {
	bin := toolBinary(t, "mongosh")
	for _, mode := range []string{ModeDatabase, ModeField} {
		t.Run(mode, func(t *testing.T) {
			p := startProxy(t, Options{Mode: mode})
			db := uniqueDB()
			acme := p.runMongosh(t, bin, db, "acme", "acme-1", "globex-1", false)
			globex := p.runMongosh(t, bin, db, "globex", "globex-1", "acme-1", true)
			for tenant, r := range map[string]mongoshResult{"acme": acme, "globex": globex} {
				want := tenant + "-1"
				if r.Inserted != want || r.Count != 1 || len(r.IDs) != 1 || r.IDs[0] != want {
					t.Errorf("%s: %+v; want only its own document %q", tenant, r, want)
				}
				if r.SeesField {
					t.Errorf("%s: the tenant field shows in find results", tenant)
				}
				if r.Foreign != 0 {
					t.Errorf("%s: found %d documents of the other tenant", tenant, r.Foreign)
				}
				if !strings.Contains(r.WhereError, "tenantgate") {
					t.Errorf("%s: $where: %q, want tenantgate's refusal", tenant, r.WhereError)
				}
			}
			if globex.DeletedAll != 1 {
				t.Errorf("globex deleteMany({}) deleted %d, want its own 1", globex.DeletedAll)
			}
			// acme's document survived globex's deleteMany, and sits where
			// the mode puts it.
			again := p.runMongosh(t, bin, db, "acme", "acme-2", "globex-1", false)
			if again.Count != 2 || strings.Join(again.IDs, ",") != "acme-1,acme-2" {
				t.Errorf("acme after globex's deleteMany: %+v", again)
			}
			ctx := ctxT(t)
			direct := p.direct()
			var n int64
			var err error
			if mode == ModeDatabase {
				n, err = direct.Database(db+"__acme").Collection("docs").CountDocuments(ctx, bson.D{})
			} else {
				n, err = direct.Database(db).Collection("docs").CountDocuments(ctx, bson.D{{Key: DefaultTenantField, Value: "acme"}})
			}
			if err != nil || n != 2 {
				t.Errorf("upstream: %d acme documents, %v; want 2", n, err)
			}
		})
	}
}
