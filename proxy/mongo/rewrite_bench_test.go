package mongo

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// BenchmarkRewrite measures the rewriter per typical command; the target is
// under 5 µs for a find or an insert.
func BenchmarkRewrite(b *testing.B) {
	cmds := map[string]string{
		"find":      `{"find":"docs","filter":{"_id":"abc","status":"ok"},"limit":1,"singleBatch":true,"lsid":{"id":{"$binary":{"base64":"AAAAAAAAAAAAAAAAAAAAAA==","subType":"04"}}},"$db":"app"}`,
		"insert":    `{"insert":"docs","ordered":true,"documents":[{"_id":"abc","name":"n","chunk_ids":["a","b","c"],"n":42}],"$db":"app"}`,
		"update":    `{"update":"docs","updates":[{"q":{"_id":"abc"},"u":{"$set":{"name":"x"},"$setOnInsert":{"c":1}},"upsert":true}],"$db":"app"}`,
		"aggregate": `{"aggregate":"docs","pipeline":[{"$match":{"a":1}},{"$group":{"_id":"$b","n":{"$sum":1}}}],"cursor":{},"$db":"app"}`,
	}
	for _, mode := range []string{ModeDatabase, ModeField} {
		r := newTestRewriter(b, mode)
		for name, js := range cmds {
			var d bson.D
			if err := bson.UnmarshalExtJSON([]byte(js), false, &d); err != nil {
				b.Fatal(err)
			}
			body, _ := bson.Marshal(d)
			b.Run(mode+"/"+name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					msg, err := parseOpMsg(appendOpMsg(nil, 1, 0, &OpMsg{Body: bsoncore.Document(body)}))
					if err != nil {
						b.Fatal(err)
					}
					if _, _, err := r.Rewrite(&command{Name: firstKey(msg.Body), DB: "app", Msg: msg}, "acme"); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
