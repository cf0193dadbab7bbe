package mongo

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

func extDoc(t *testing.T, js string) bsoncore.Document {
	t.Helper()
	var d bson.D
	if err := bson.UnmarshalExtJSON([]byte(js), false, &d); err != nil {
		t.Fatal(err)
	}
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFixReply(t *testing.T) {
	namer, _ := NewDatabaseNamer(DefaultDatabaseTemplate)
	names := map[string]string{"app__acme": "app"}
	for _, c := range []struct {
		name  string
		plan  *replyPlan
		reply string
		want  string
	}{
		{"cursor ns", &replyPlan{names: names},
			`{"cursor":{"firstBatch":[{"db":"app__acme"}],"id":{"$numberLong":"0"},"ns":"app__acme.c"},"ok":1}`,
			`{"cursor": {"firstBatch": [{"db": "app__acme"}],"id": {"$numberLong":"0"},"ns": "app.c"},"ok": {"$numberInt":"1"}}`},
		{"errmsg and write errors", &replyPlan{names: names},
			`{"ok":1,"writeErrors":[{"index":0,"code":11000,"errmsg":"dup in app__acme.c"}],"errmsg":"x app__acme.c"}`,
			`{"ok": {"$numberInt":"1"},"writeErrors": [{"index": {"$numberInt":"0"},"code": {"$numberInt":"11000"},"errmsg": "dup in app.c"}],"errmsg": "x app.c"}`},
		{"untouched when no name occurs", &replyPlan{names: names},
			`{"n":1,"ok":1}`, `{"n": {"$numberInt":"1"},"ok": {"$numberInt":"1"}}`},
		{"strip tenant field", &replyPlan{strip: "tenant_id"},
			`{"cursor":{"nextBatch":[{"_id":1,"tenant_id":"acme"},{"_id":2}],"id":{"$numberLong":"0"},"ns":"app.c"},"ok":1}`,
			`{"cursor": {"nextBatch": [{"_id": {"$numberInt":"1"}},{"_id": {"$numberInt":"2"}}],"id": {"$numberLong":"0"},"ns": "app.c"},"ok": {"$numberInt":"1"}}`},
		{"strip findAndModify value", &replyPlan{strip: "tenant_id"},
			`{"lastErrorObject":{"n":1},"value":{"_id":1,"tenant_id":"acme"},"ok":1}`,
			`{"lastErrorObject": {"n": {"$numberInt":"1"}},"value": {"_id": {"$numberInt":"1"}},"ok": {"$numberInt":"1"}}`},
		{"explain: names at any depth", &replyPlan{names: names, deep: true},
			`{"queryPlanner":{"namespace":"app__acme.c","winningPlan":{"inputStage":{"ns":"app__acme.c","db":"app__acme"}},"stages":[{"$lookup":{"from":"app__acme.d"}}],"parsed":{"v":"app__acme2","w":"x app__acme"}},"command":{"find":"c","$db":"app__acme"},"ok":1}`,
			`{"queryPlanner": {"namespace": "app.c","winningPlan": {"inputStage": {"ns": "app.c","db": "app"}},"stages": [{"$lookup": {"from": "app.d"}}],"parsed": {"v": "app__acme2","w": "x app__acme"}},"command": {"find": "c","$db": "app"},"ok": {"$numberInt":"1"}}`},
		{"explain: errmsg", &replyPlan{names: names, deep: true},
			`{"ok":0,"errmsg":"ns app__acme.c not found","code":26}`,
			`{"ok": {"$numberInt":"0"},"errmsg": "ns app.c not found","code": {"$numberInt":"26"}}`},
		{"listDatabases", &replyPlan{names: map[string]string{}, listDatabases: func(s string) (string, bool) { return namer.Unmap(s, "acme") }},
			`{"databases":[{"name":"app__acme","sizeOnDisk":10},{"name":"app__globex","sizeOnDisk":20},{"name":"admin","sizeOnDisk":30},{"name":"b__acme","sizeOnDisk":5}],"totalSize":65,"totalSizeMb":0,"ok":1}`,
			`{"databases": [{"name": "app","sizeOnDisk": {"$numberInt":"10"}},{"name": "b","sizeOnDisk": {"$numberInt":"5"}}],"ok": {"$numberInt":"1"},"totalSize": {"$numberLong":"15"}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newTestRewriter(t, ModeDatabase)
			got, err := r.FixReply(c.plan, "acme", extDoc(t, c.reply))
			if err != nil {
				t.Fatal(err)
			}
			if s := bson.Raw(got).String(); s != c.want {
				t.Fatalf("got  %s\nwant %s", s, c.want)
			}
		})
	}
}

func TestFixReplyRecordsCursors(t *testing.T) {
	r := newTestRewriter(t, ModeField)
	open := extDoc(t, `{"cursor":{"firstBatch":[],"id":{"$numberLong":"77"},"ns":"app.c"},"ok":1}`)
	if _, err := r.FixReply(&replyPlan{cursor: cursorOpens}, "acme", open); err != nil || !r.cursors.Owns(77, "acme") {
		t.Fatalf("cursor 77 not recorded for acme: %v", err)
	}
	failed := extDoc(t, `{"cursor":{"id":{"$numberLong":"78"}},"ok":0}`)
	if _, _ = r.FixReply(&replyPlan{cursor: cursorOpens}, "acme", failed); r.cursors.Owns(78, "acme") {
		t.Fatal("a failed reply recorded a cursor")
	}
	done := extDoc(t, `{"cursor":{"nextBatch":[],"id":{"$numberLong":"0"},"ns":"app.c"},"ok":1}`)
	if _, _ = r.FixReply(&replyPlan{cursor: cursorContinues, cursorID: 77}, "acme", done); r.cursors.Owns(77, "acme") {
		t.Fatal("an exhausted cursor is still recorded")
	}
	r.cursors.Open(79, "acme")
	if _, _ = r.FixReply(&replyPlan{cursor: cursorKills, killed: []int64{79}}, "acme", extDoc(t, `{"ok":1}`)); r.cursors.Owns(79, "acme") {
		t.Fatal("a killed cursor is still recorded")
	}
}
