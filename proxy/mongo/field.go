package mongo

import (
	"bytes"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// fieldScoper implements mode "field": tenants share collections and every
// document carries the tenant in a field. Filters are wrapped, never merged:
// {$and: [{<field>: T}, <user filter>]}, so no operator, duplicate key or
// dotted path in the user's filter can widen it.
type fieldScoper struct {
	field string
}

func (f *fieldScoper) scope(cmd *command, class commandClass, tenant string) (*OpMsg, *replyPlan, error) {
	plan := &replyPlan{}
	out := *cmd.Msg
	body := cmd.Msg.Body
	err := refuseCollation(body)
	if err != nil {
		return nil, nil, err
	}
	switch class {
	case classFind:
		plan.strip = f.field
		out.Body, err = f.wrapFilter(body, "filter", tenant)
	case classCount, classDistinct:
		out.Body, err = f.wrapFilter(body, "query", tenant)
	case classAggregate:
		if _, ok := body.Lookup(cmd.Name).StringValueOK(); !ok {
			return nil, nil, refuse(codeUnauthorized, reasonForbidden, "database-level aggregate is not allowed in field mode")
		}
		plan.strip = f.field
		seen := false
		out.Body, err = editDoc(nil, body, func(dst []byte, e bsoncore.Element) ([]byte, error) {
			if e.Key() == "pipeline" {
				seen = true
				return f.appendPipeline(dst, "pipeline", e.Value(), tenant, false)
			}
			return appendElem(dst, e), nil
		}, func(dst []byte) []byte {
			if seen {
				return dst
			}
			return appendArray(dst, "pipeline", [][]byte{f.matchStage(tenant)})
		})
	case classInsert:
		out.Body, out.Sequences, err = f.eachStatement(&out, "documents", func(doc bsoncore.Document) (bsoncore.Document, error) {
			return f.stamp(doc, tenant)
		})
	case classUpdate:
		out.Body, out.Sequences, err = f.eachStatement(&out, "updates", func(st bsoncore.Document) (bsoncore.Document, error) {
			if err := refuseCollation(st); err != nil {
				return nil, err
			}
			return f.rewriteWrite(st, "q", "u", truthy(st.Lookup("upsert")), tenant)
		})
	case classDelete:
		out.Body, out.Sequences, err = f.eachStatement(&out, "deletes", func(st bsoncore.Document) (bsoncore.Document, error) {
			if err := refuseCollation(st); err != nil {
				return nil, err
			}
			return f.wrapFilter(st, "q", tenant)
		})
	case classFindAndModify:
		plan.strip = f.field
		out.Body, err = f.rewriteWrite(body, "query", "update", truthy(body.Lookup("upsert")), tenant)
	case classGetMore:
		plan.strip = f.field
	case classKillCursors, classCollection, classTransaction, classListDatabase:
	case classCreate:
		if body.Lookup("viewOn").Type != 0 || body.Lookup("pipeline").Type != 0 {
			return nil, nil, refuse(codeUnauthorized, reasonForbidden, "views are not allowed in field mode: a view's pipeline runs over every tenant's documents")
		}
		for _, k := range sharedCreateOptions {
			if body.Lookup(k).Type != 0 {
				return nil, nil, refuse(codeUnauthorized, reasonForbidden, "create with %s is not allowed in field mode: it would act on every tenant's documents", k)
			}
		}
	case classCreateIndex:
		out.Body, err = f.rewriteIndexes(body)
	case classExplain:
		out.Body, err = f.rewriteExplain(body, tenant)
	default: // destructive, stats, rename
		return nil, nil, refuse(codeUnauthorized, reasonForbidden, "%s acts on collections shared by all tenants and is not allowed in field mode", cmd.Name)
	}
	if err != nil {
		return nil, nil, err
	}
	return &out, plan, nil
}

// sharedCreateOptions are create options that act on every document of the
// (shared) collection: a capped size evicts, a TTL deletes, a validator
// rejects other tenants' writes.
var sharedCreateOptions = []string{
	"capped", "size", "max", "validator", "validationLevel", "validationAction",
	"expireAfterSeconds", "timeseries", "clusteredIndex",
}

var simpleCollation = bsoncore.BuildDocument(nil, bsoncore.AppendStringElement(nil, "locale", "simple"))

// refuseCollation refuses any collation but the simple one: a
// case-insensitive or punctuation-ignoring collation would make the tenant
// match "ACME" for "acme", or "a-b" for "ab".
func refuseCollation(doc bsoncore.Document) error {
	var err error
	elements(doc, func(e bsoncore.Element) bool {
		if e.Key() != "collation" {
			return true
		}
		c, _ := e.Value().DocumentOK()
		if locale, _ := c.Lookup("locale").StringValueOK(); locale != "simple" || !bytes.Equal(c, simpleCollation) {
			err = refuse(codeUnauthorized, reasonForbidden, "only the simple collation is allowed in field mode: another would loosen the tenant match")
		}
		return err == nil
	})
	return err
}

// tenantDoc is {<field>: T}.
func (f *fieldScoper) tenantDoc(tenant string) bsoncore.Document {
	return bsoncore.BuildDocument(nil, bsoncore.AppendStringElement(nil, f.field, tenant))
}

// scopedFilter is {$and: [{<field>: T}, user]}, or {<field>: T} for an
// empty user filter.
func (f *fieldScoper) scopedFilter(user bsoncore.Document, tenant string) bsoncore.Document {
	if user == nil || emptyDoc(user) {
		return f.tenantDoc(tenant)
	}
	return bsoncore.BuildDocument(nil, appendArray(nil, "$and", [][]byte{f.tenantDoc(tenant), user}))
}

// wrapFilter scopes the filter under key, adding one when there is none.
func (f *fieldScoper) wrapFilter(doc bsoncore.Document, key, tenant string) (bsoncore.Document, error) {
	seen := false
	return editDoc(nil, doc, func(dst []byte, e bsoncore.Element) ([]byte, error) {
		if e.Key() != key {
			return appendElem(dst, e), nil
		}
		if seen {
			return nil, refuse(codeFailedToParse, reasonMalformed, "%s given twice", key)
		}
		seen = true
		user, ok := e.Value().DocumentOK()
		if !ok && e.Value().Type != bsoncore.TypeNull {
			return nil, refuse(codeFailedToParse, reasonMalformed, "%s must be a document", key)
		}
		return bsoncore.AppendDocumentElement(dst, key, f.scopedFilter(user, tenant)), nil
	}, func(dst []byte) []byte {
		if seen {
			return dst
		}
		return bsoncore.AppendDocumentElement(dst, key, f.tenantDoc(tenant))
	})
}

// eachStatement rewrites every document of a write command's statements,
// given either in the body (an array under id) or as a document sequence.
func (f *fieldScoper) eachStatement(m *OpMsg, id string, fn func(bsoncore.Document) (bsoncore.Document, error)) (bsoncore.Document, []Sequence, error) {
	seqs := make([]Sequence, len(m.Sequences))
	for i, s := range m.Sequences {
		if s.Identifier != id {
			return nil, nil, refuse(codeFailedToParse, reasonMalformed, "unexpected document sequence %q", s.Identifier)
		}
		seqs[i] = Sequence{Identifier: id, Docs: make([]bsoncore.Document, len(s.Docs))}
		for j, d := range s.Docs {
			var err error
			if seqs[i].Docs[j], err = fn(d); err != nil {
				return nil, nil, err
			}
		}
	}
	body, err := editDoc(nil, m.Body, func(dst []byte, e bsoncore.Element) ([]byte, error) {
		if e.Key() != id {
			return appendElem(dst, e), nil
		}
		docs, ok := arrayDocs(e.Value())
		if !ok {
			return nil, refuse(codeFailedToParse, reasonMalformed, "%s must be an array of documents", id)
		}
		out := make([][]byte, len(docs))
		for i, d := range docs {
			var err error
			if out[i], err = fn(d); err != nil {
				return nil, err
			}
		}
		return appendArray(dst, id, out), nil
	}, nil)
	return body, seqs, err
}

// stamp makes doc carry <field>: T. A document that already names the
// tenant field must name this tenant, as a string, in every occurrence.
func (f *fieldScoper) stamp(doc bsoncore.Document, tenant string) (bsoncore.Document, error) {
	found := false
	var err error
	elements(doc, func(e bsoncore.Element) bool {
		if e.Key() != f.field {
			return true
		}
		found = true
		if s, ok := e.Value().StringValueOK(); !ok || s != tenant {
			err = refuse(codeUnauthorized, reasonTenantField, "documents may not set %s to another value than the session's tenant", f.field)
			return false
		}
		return true
	})
	if err != nil || found {
		return doc, err
	}
	return withElement(doc, bsoncore.AppendStringElement(nil, f.field, tenant)), nil
}

// rewriteWrite scopes an update statement or a findAndModify: the filter
// under qKey is wrapped, the update under uKey is checked (operators) or
// stamped (replacement), and upserts insert the tenant field.
func (f *fieldScoper) rewriteWrite(doc bsoncore.Document, qKey, uKey string, upsert bool, tenant string) (bsoncore.Document, error) {
	filter, _ := doc.Lookup(qKey).DocumentOK()
	doc, err := f.wrapFilter(doc, qKey, tenant)
	if err != nil {
		return nil, err
	}
	return editDoc(nil, doc, func(dst []byte, e bsoncore.Element) ([]byte, error) {
		if e.Key() != uKey {
			return appendElem(dst, e), nil
		}
		u, ok := e.Value().DocumentOK()
		if !ok {
			return nil, refuse(codeUnauthorized, reasonForbidden, "pipeline updates are not supported in field mode")
		}
		if !strings.HasPrefix(firstKey(u), "$") {
			stamped, err := f.stamp(u, tenant)
			if err == nil && upsert && stamped.Lookup("_id").Type == 0 {
				if id := filter.Lookup("_id"); id.Type != 0 && !isOperatorDoc(id) {
					stamped = withElement(stamped, bsoncore.AppendValueElement(nil, "_id", id))
				}
			}
			return bsoncore.AppendDocumentElement(dst, uKey, stamped), err
		}
		var seed []byte
		if upsert {
			seed = f.upsertSeed(filter, u, tenant)
		}
		out, err := f.rewriteOperators(u, seed)
		return bsoncore.AppendDocumentElement(dst, uKey, out), err
	}, nil)
}

// upsertSeed is what an upsert must insert besides the update: the tenant
// field, and the filter's top-level equality conditions that the update
// does not set itself. MongoDB derives the latter from the filter, but not
// every server looks inside the $and the filter is wrapped in (FerretDB v1
// does not), so they are given explicitly with $setOnInsert.
func (f *fieldScoper) upsertSeed(filter, u bsoncore.Document, tenant string) []byte {
	var touched []string
	elements(u, func(op bsoncore.Element) bool {
		args, _ := op.Value().DocumentOK()
		elements(args, func(a bsoncore.Element) bool {
			touched = append(touched, a.Key())
			if to, ok := a.Value().StringValueOK(); ok && op.Key() == "$rename" {
				touched = append(touched, to)
			}
			return true
		})
		return true
	})
	seed := bsoncore.AppendStringElement(nil, f.field, tenant)
	elements(filter, func(e bsoncore.Element) bool {
		k := e.Key()
		if strings.HasPrefix(k, "$") || isOperatorDoc(e.Value()) || e.Value().Type == bsoncore.TypeRegex || f.touches(k) {
			return true
		}
		for _, p := range touched {
			if overlaps(p, k) {
				return true
			}
		}
		seed = appendElem(seed, e)
		return true
	})
	return seed
}

// isOperatorDoc reports a query operator document such as {$gt: 1}.
func isOperatorDoc(v bsoncore.Value) bool {
	d, ok := v.DocumentOK()
	return ok && strings.HasPrefix(firstKey(d), "$")
}

// overlaps reports whether one dotted path is the other or under it.
func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(b, a+".")
}

// rewriteOperators refuses update operators that touch the tenant field
// (the field itself or any path under it, as target or $rename source). For
// upserts, seed is added to $setOnInsert.
func (f *fieldScoper) rewriteOperators(u bsoncore.Document, seed []byte) (bsoncore.Document, error) {
	sawSetOnInsert := false
	out, err := editDoc(nil, u, func(dst []byte, e bsoncore.Element) ([]byte, error) {
		op := e.Key()
		if !strings.HasPrefix(op, "$") {
			return nil, refuse(codeFailedToParse, reasonMalformed, "an update may not mix operators and fields")
		}
		args, ok := e.Value().DocumentOK()
		if !ok {
			return nil, refuse(codeFailedToParse, reasonMalformed, "%s needs a document", op)
		}
		var err error
		elements(args, func(a bsoncore.Element) bool {
			if f.touches(a.Key()) {
				err = refuse(codeUnauthorized, reasonTenantField, "updates may not change %s", f.field)
			} else if op == "$rename" {
				if to, _ := a.Value().StringValueOK(); f.touches(to) {
					err = refuse(codeUnauthorized, reasonTenantField, "updates may not change %s", f.field)
				}
			}
			return err == nil
		})
		if err != nil {
			return nil, err
		}
		if op == "$setOnInsert" && seed != nil {
			sawSetOnInsert = true
			return bsoncore.AppendDocumentElement(dst, op, withElement(args, seed)), nil
		}
		return appendElem(dst, e), nil
	}, func(dst []byte) []byte {
		if seed != nil && !sawSetOnInsert {
			return bsoncore.BuildDocumentElement(dst, "$setOnInsert", seed)
		}
		return dst
	})
	return out, err
}

// touches reports whether an update path is the tenant field or under it.
func (f *fieldScoper) touches(path string) bool {
	head, _, _ := strings.Cut(path, ".")
	return head == f.field
}

// rewriteIndexes makes unique indexes unique per tenant (the tenant field
// first) and refuses partial filters, which could index across tenants.
func (f *fieldScoper) rewriteIndexes(body bsoncore.Document) (bsoncore.Document, error) {
	return editDoc(nil, body, func(dst []byte, e bsoncore.Element) ([]byte, error) {
		if e.Key() != "indexes" {
			return appendElem(dst, e), nil
		}
		specs, ok := arrayDocs(e.Value())
		if !ok {
			return nil, refuse(codeFailedToParse, reasonMalformed, "indexes must be an array of documents")
		}
		out := make([][]byte, len(specs))
		for i, spec := range specs {
			if spec.Lookup("partialFilterExpression").Type != 0 {
				return nil, refuse(codeUnauthorized, reasonForbidden, "partial indexes are not supported in field mode")
			}
			if spec.Lookup("expireAfterSeconds").Type != 0 {
				return nil, refuse(codeUnauthorized, reasonForbidden, "TTL indexes are not allowed in field mode: they delete every tenant's documents")
			}
			if err := refuseCollation(spec); err != nil {
				return nil, err
			}
			unique, _ := spec.Lookup("unique").BooleanOK()
			key, _ := spec.Lookup("key").DocumentOK()
			if !unique || firstKey(key) == f.field {
				out[i] = spec
				continue
			}
			var err error
			out[i], err = editDoc(nil, spec, func(dst []byte, e bsoncore.Element) ([]byte, error) {
				if e.Key() != "key" {
					return appendElem(dst, e), nil
				}
				idx, d := bsoncore.AppendDocumentElementStart(dst, "key")
				d = bsoncore.AppendInt32Element(d, f.field, 1)
				var err error
				elements(key, func(k bsoncore.Element) bool {
					if k.Key() == f.field {
						err = refuse(codeUnauthorized, reasonTenantField, "index keys may name %s first only", f.field)
						return false
					}
					d = appendElem(d, k)
					return true
				})
				if err != nil {
					return nil, err
				}
				return bsoncore.AppendDocumentEnd(d, idx)
			}, nil)
			if err != nil {
				return nil, err
			}
		}
		return appendArray(dst, "indexes", out), nil
	}, nil)
}

// rewriteExplain scopes explain's inner command like the command itself.
func (f *fieldScoper) rewriteExplain(body bsoncore.Document, tenant string) (bsoncore.Document, error) {
	return editDoc(nil, body, func(dst []byte, e bsoncore.Element) ([]byte, error) {
		if e.Key() != "explain" {
			return appendElem(dst, e), nil
		}
		inner, ok := e.Value().DocumentOK()
		if !ok {
			return nil, refuse(codeFailedToParse, reasonMalformed, "explain needs a command document")
		}
		if err := explainable(inner); err != nil {
			return nil, err
		}
		name := firstKey(inner)
		scoped, _, err := f.scope(&command{Name: name, Msg: &OpMsg{Body: inner}}, commandClasses[name], tenant)
		if err != nil {
			return nil, err
		}
		return bsoncore.AppendDocumentElement(dst, "explain", scoped.Body), nil
	}, nil)
}
