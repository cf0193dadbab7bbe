// Package ids derives ragcore's content-hash identifiers, LightRAG style.
//
// Every id is a short prefix plus the hex MD5 of the content it names, so the
// same content always gets the same id: re-ingesting an unchanged document
// is recognised as a no-op, and two independent deployments (or two tenants
// behind tenantgate) that ingest the same text produce the same ids. Keeping
// those apart is the storage layer's job, not ragcore's.
//
// MD5 is used as a content fingerprint, not for security.
package ids

import (
	"crypto/md5"
	"encoding/hex"
)

func hash(prefix string, parts ...string) string {
	h := md5.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0}) // separator: ("ab","c") and ("a","bc") differ
		}
		h.Write([]byte(p))
	}
	return prefix + hex.EncodeToString(h.Sum(nil))
}

// Doc returns the id of a document with the given full text.
func Doc(text string) string { return hash("doc-", text) }

// Chunk returns the id of a chunk of a document. The document id is part of
// the hash so that one paragraph shared by two documents of the same store
// yields two chunks, and deleting one document never removes the other's.
func Chunk(docID, text string) string { return hash("chunk-", docID, text) }

// Entity returns the id of the entity with the given name.
func Entity(name string) string { return hash("ent-", name) }

// Relation returns the id of the undirected relation between a and b: the
// same whichever order they are given in.
func Relation(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return hash("rel-", a, b)
}

// Cache returns the key of a cached model response for the given request
// parts (model name, prompt, ...).
func Cache(parts ...string) string { return hash("cache-", parts...) }
