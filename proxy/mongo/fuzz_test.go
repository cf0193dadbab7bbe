package mongo

import (
	"bytes"
	"encoding/binary"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// FuzzDecoder: any byte stream is framed and decoded without panicking, and
// a message is never allocated beyond the configured maximum.
func FuzzDecoder(f *testing.F) {
	f.Add(appendOpMsg(nil, 1, 0, &OpMsg{Body: pingDoc()}))
	f.Add(appendOpMsg(nil, 1, 0, &OpMsg{Body: pingDoc(), Sequences: []Sequence{{Identifier: "documents", Docs: []bsoncore.Document{pingDoc()}}}}))
	f.Add(withChecksum(appendOpMsg(nil, 1, 0, &OpMsg{Body: pingDoc()})))
	f.Add(appendHeader(nil, MessageHeader{Length: 1 << 30, OpCode: opMsg}))
	const max = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			h, msg, err := readMessage(r, nil, max)
			if err != nil {
				return
			}
			if len(msg) > max || int(h.Length) != len(msg) {
				t.Fatalf("message of %d bytes (header %d) read with max %d", len(msg), h.Length, max)
			}
			switch h.OpCode {
			case opMsg:
				if m, err := parseOpMsg(msg); err == nil {
					_ = firstKey(m.Body)
				}
			case opQuery:
				_, _ = parseOpQuery(msg)
			}
		}
	})
}

// FuzzRewriter: any decodable command is rewritten or refused without
// panicking, in both modes, and a field-mode rewrite of a find keeps the
// tenant filter.
func FuzzRewriter(f *testing.F) {
	for _, js := range []string{
		`{"find":"c","filter":{"a":1},"$db":"app"}`,
		`{"aggregate":"c","pipeline":[{"$lookup":{"from":"d","as":"j","pipeline":[{"$facet":{"x":[]}}]}}],"$db":"app"}`,
		`{"update":"c","updates":[{"q":{"_id":1},"u":{"$set":{"a":1}},"upsert":true}],"$db":"app"}`,
		`{"renameCollection":"a.b","to":"c.d","$db":"admin"}`,
		`{"aggregate":"c","pipeline":[{"$graphLookup":{"from":"d","startWith":"$a","connectFromField":"a","connectToField":"b","as":"g"}}],"$db":"app"}`,
		`{"explain":{"find":"c","filter":{"a":1}},"$db":"app"}`,
	} {
		f.Add([]byte(js))
	}
	modes := map[string]*CommandRewriter{ModeDatabase: newTestRewriter(f, ModeDatabase), ModeField: newTestRewriter(f, ModeField)}
	f.Fuzz(func(t *testing.T, data []byte) {
		body := fuzzDoc(data)
		if body == nil {
			return
		}
		db, _ := body.Lookup("$db").StringValueOK()
		for mode, r := range modes {
			out, _, err := r.Rewrite(&command{Name: firstKey(body), DB: db, Msg: &OpMsg{Body: body}}, "acme")
			if err != nil {
				continue
			}
			if err := validateDepth(out.Body, 0); err != nil {
				t.Fatalf("%s: rewrite produced invalid BSON: %v", mode, err)
			}
			if mode == ModeField && firstKey(body) == "find" {
				f, _ := out.Body.Lookup("filter").DocumentOK()
				if firstKey(f) != "tenant_id" && firstKey(f) != "$and" {
					t.Fatalf("find lost its tenant filter: %v", out.Body)
				}
			}
		}
	})
}

// fuzzDoc reads data as extended JSON or, failing that, as raw BSON, and
// returns it when the decoder would accept it.
func fuzzDoc(data []byte) bsoncore.Document {
	doc := bsoncore.Document(data)
	if len(data) >= 5 && int(binary.LittleEndian.Uint32(data)) == len(data) && validateDepth(doc, 0) == nil {
		return doc
	}
	var d bson.D
	if bson.UnmarshalExtJSON(data, false, &d) != nil {
		return nil
	}
	raw, err := bson.Marshal(d)
	if err != nil || validateDepth(raw, 0) != nil {
		return nil
	}
	return raw
}
