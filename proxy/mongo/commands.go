package mongo

import (
	"bytes"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// command is one decoded client command.
type command struct {
	Name string
	DB   string
	Msg  *OpMsg
}

// commandClass groups commands that are scoped the same way.
type commandClass int

const (
	classFind commandClass = iota + 1 // filter
	classCount
	classDistinct
	classAggregate
	classInsert
	classUpdate
	classDelete
	classFindAndModify
	classGetMore
	classKillCursors
	classCreate       // create: views carry a pipeline
	classCreateIndex  // createIndexes
	classCollection   // listCollections, listIndexes: read the collection catalog
	classDestructive  // drop, dropDatabase, dropIndexes, collMod: shared in field mode
	classStats        // dbStats, collStats: reveal sizes of shared collections
	classRename       // renameCollection (on admin)
	classExplain      // explain: scope the inner command
	classTransaction  // commitTransaction, abortTransaction (on admin)
	classListDatabase // listDatabases (on admin)
)

// commandClasses is the allowlist: a command not named here is refused
// before anything reaches the upstream. Names are case-sensitive, as the
// server's are, aliases included.
var commandClasses = map[string]commandClass{
	"find":              classFind,
	"count":             classCount,
	"distinct":          classDistinct,
	"aggregate":         classAggregate,
	"insert":            classInsert,
	"update":            classUpdate,
	"delete":            classDelete,
	"findAndModify":     classFindAndModify,
	"findandmodify":     classFindAndModify,
	"getMore":           classGetMore,
	"killCursors":       classKillCursors,
	"create":            classCreate,
	"createIndexes":     classCreateIndex,
	"listCollections":   classCollection,
	"listIndexes":       classCollection,
	"drop":              classDestructive,
	"dropDatabase":      classDestructive,
	"dropIndexes":       classDestructive,
	"deleteIndexes":     classDestructive,
	"collMod":           classDestructive,
	"dbStats":           classStats,
	"collStats":         classStats,
	"renameCollection":  classRename,
	"explain":           classExplain,
	"commitTransaction": classTransaction,
	"abortTransaction":  classTransaction,
	"listDatabases":     classListDatabase,
}

// adminClasses may (and must) name the admin database.
func adminClass(c commandClass) bool {
	return c == classRename || c == classTransaction || c == classListDatabase
}

// jsOperators run server-side JavaScript: refused wherever they appear,
// since code can read what a filter was meant to hide.
var jsOperators = map[string]bool{"$where": true, "$function": true, "$accumulator": true}

// findJS reports the first JavaScript operator key anywhere in doc.
func findJS(doc bsoncore.Document, depth int) string {
	if depth > maxDepth {
		return "deep nesting"
	}
	found := ""
	elements(doc, func(e bsoncore.Element) bool {
		if k := e.KeyBytes(); len(k) > 0 && k[0] == '$' && jsOperators[string(k)] {
			found = string(k)
			return false
		}
		v := e.Value()
		if v.Type == bsoncore.TypeEmbeddedDocument || v.Type == bsoncore.TypeArray {
			found = findJS(v.Data, depth+1)
		}
		return found == ""
	})
	return found
}

// refuseDuplicateKeys refuses a command whose body, or any of whose
// update/delete statements, names a field twice. The proxy and the server
// could otherwise read different values of it ($db, upsert, getMore ...).
func refuseDuplicateKeys(cmd *command) error {
	check := func(d bsoncore.Document) error {
		if k := duplicateKey(d); k != "" {
			return refuse(codeFailedToParse, reasonMalformed, "field %q given twice", k)
		}
		return nil
	}
	if err := check(cmd.Msg.Body); err != nil {
		return err
	}
	for _, key := range []string{"updates", "deletes"} {
		docs, _ := arrayDocs(cmd.Msg.Body.Lookup(key))
		if seq, ok := cmd.Msg.Sequence(key); ok {
			docs = append(docs, seq...)
		}
		for _, d := range docs {
			if err := check(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// duplicateKey returns a top-level key doc holds twice, or "". Small
// documents are checked without allocating.
func duplicateKey(doc bsoncore.Document) string {
	var small [16][]byte
	keys := small[:0]
	var set map[string]bool
	dup := ""
	elements(doc, func(e bsoncore.Element) bool {
		k := e.KeyBytes()
		if set == nil && len(keys) == len(small) {
			set = make(map[string]bool, 2*len(small))
			for _, s := range keys {
				set[string(s)] = true
			}
		}
		if set != nil {
			if set[string(k)] {
				dup = string(k)
			}
			set[string(k)] = true
			return dup == ""
		}
		for _, seen := range keys {
			if bytes.Equal(seen, k) {
				dup = string(k)
				return false
			}
		}
		keys = append(keys, k)
		return true
	})
	return dup
}

// refuseJS checks the body and the update/delete sequences; inserted
// documents are data and are not searched.
func refuseJS(cmd *command) error {
	check := func(d bsoncore.Document) error {
		if k := findJS(d, 0); k != "" {
			return refuse(codeUnauthorized, reasonForbidden, "%s is not allowed through tenantgate", k)
		}
		return nil
	}
	if cmd.Name != "insert" {
		if err := check(cmd.Msg.Body); err != nil {
			return err
		}
	}
	for _, s := range cmd.Msg.Sequences {
		if s.Identifier == "documents" {
			continue
		}
		for _, d := range s.Docs {
			if err := check(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// stageName returns the name of a pipeline stage, which must have exactly
// one field.
func stageName(stage bsoncore.Document) (string, error) {
	name, n := "", 0
	elements(stage, func(e bsoncore.Element) bool {
		if n == 0 {
			name = e.Key()
		}
		n++
		return n < 2
	})
	if n != 1 {
		return "", refuse(codeFailedToParse, reasonMalformed, "a pipeline stage must have exactly one field")
	}
	return name, nil
}

// sequenceIDs are the only OP_MSG document sequences accepted, by command:
// the server merges a sequence into the body as an array field, so a
// sequence anywhere else (a "pipeline" of aggregate, say) would carry what
// the rewriter never looked at.
var sequenceIDs = map[string]string{"insert": "documents", "update": "updates", "delete": "deletes"}

// refuseSequences refuses unexpected document sequences and a field given
// both in the body and as a sequence.
func refuseSequences(cmd *command) error {
	for _, s := range cmd.Msg.Sequences {
		if s.Identifier != sequenceIDs[cmd.Name] {
			return refuse(codeFailedToParse, reasonMalformed, "document sequence %q is not accepted with %s", s.Identifier, cmd.Name)
		}
		if cmd.Msg.Body.Lookup(s.Identifier).Type != 0 {
			return refuse(codeFailedToParse, reasonMalformed, "%s given both in the body and as a document sequence", s.Identifier)
		}
	}
	if len(cmd.Msg.Sequences) > 1 {
		return refuse(codeFailedToParse, reasonMalformed, "more than one document sequence")
	}
	return nil
}
