package mongo

import (
	"encoding/binary"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Helpers over bsoncore. Documents reaching them were validated by the
// decoder (parseOpMsg), so iteration cannot fail on malformed input.

// elements calls f for each element of doc until f returns false.
func elements(doc bsoncore.Document, f func(e bsoncore.Element) bool) {
	if len(doc) < 5 {
		return
	}
	rest := doc[4 : len(doc)-1]
	for len(rest) > 0 {
		e, more, ok := bsoncore.ReadElement(rest)
		if !ok || !f(e) {
			return
		}
		rest = more
	}
}

// firstKey is the command name of a command document.
func firstKey(doc bsoncore.Document) string {
	var k string
	elements(doc, func(e bsoncore.Element) bool {
		k = e.Key()
		return false
	})
	return k
}

// editFunc appends to dst what replaces e (e itself to keep it, nothing to
// drop it).
type editFunc func(dst []byte, e bsoncore.Element) ([]byte, error)

// editDoc copies src into dst through edit, then appends the elements that
// tail adds (may be nil).
func editDoc(dst []byte, src bsoncore.Document, edit editFunc, tail func([]byte) []byte) ([]byte, error) {
	idx, dst := bsoncore.AppendDocumentStart(dst)
	var err error
	elements(src, func(e bsoncore.Element) bool {
		dst, err = edit(dst, e)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	if tail != nil {
		dst = tail(dst)
	}
	return bsoncore.AppendDocumentEnd(dst, idx)
}

// appendArray appends an array element built from docs.
func appendArray(dst []byte, key string, docs [][]byte) []byte {
	idx, dst := bsoncore.AppendArrayElementStart(dst, key)
	for i, d := range docs {
		dst = bsoncore.AppendDocumentElement(dst, strconv.Itoa(i), d)
	}
	dst, _ = bsoncore.AppendArrayEnd(dst, idx)
	return dst
}

// arrayDocs returns the documents of an array value; ok is false when the
// value is not an array of documents.
func arrayDocs(v bsoncore.Value) ([]bsoncore.Document, bool) {
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, false
	}
	var docs []bsoncore.Document
	good := true
	elements(bsoncore.Document(arr), func(e bsoncore.Element) bool {
		d, isDoc := e.Value().DocumentOK()
		docs = append(docs, d)
		good = isDoc
		return good
	})
	return docs, good
}

// appendElem appends e unchanged.
func appendElem(dst []byte, e bsoncore.Element) []byte { return append(dst, e...) }

// withElement returns a copy of doc with elem appended at its end.
func withElement(doc bsoncore.Document, elem []byte) bsoncore.Document {
	out := make([]byte, 0, len(doc)+len(elem))
	out = append(out, doc[:len(doc)-1]...)
	out = append(out, elem...)
	out = append(out, 0)
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	return out
}

// emptyDoc reports whether doc has no elements.
func emptyDoc(doc bsoncore.Document) bool { return len(doc) <= 5 }

// truthy reads a flag the way the server does: true, or any non-zero
// number.
func truthy(v bsoncore.Value) bool {
	if b, ok := v.BooleanOK(); ok {
		return b
	}
	if f, ok := v.DoubleOK(); ok {
		return f != 0
	}
	n, ok := v.AsInt64OK()
	return ok && n != 0
}
