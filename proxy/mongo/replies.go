package mongo

import (
	"bytes"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// FixReply records the cursors a reply opens or closes for tenant and
// returns the reply as the client must see it: database names mapped back,
// the tenant field removed, listDatabases filtered. The reply is returned
// unchanged (not copied) when nothing in it needs fixing.
func (r *CommandRewriter) FixReply(plan *replyPlan, tenant string, reply bsoncore.Document) (bsoncore.Document, error) {
	ok := okOf(reply)
	switch plan.cursor {
	case cursorOpens:
		if id, found := reply.Lookup("cursor", "id").Int64OK(); ok && found {
			r.cursors.Open(id, tenant)
		}
	case cursorContinues:
		if id, found := reply.Lookup("cursor", "id").Int64OK(); !ok || found && id == 0 {
			r.cursors.Close(plan.cursorID)
		}
	case cursorKills:
		for _, id := range plan.killed {
			r.cursors.Close(id)
		}
	}
	if !plan.needsFix(reply) {
		return reply, nil
	}
	if plan.deep {
		return plan.mapDeep(reply), nil
	}
	return editDoc(nil, reply, func(dst []byte, e bsoncore.Element) ([]byte, error) {
		v := e.Value()
		switch key := e.Key(); {
		case key == "cursor" && v.Type == bsoncore.TypeEmbeddedDocument:
			doc, err := editDoc(nil, v.Data, plan.fixCursor, nil)
			return bsoncore.AppendDocumentElement(dst, key, doc), err
		case key == "errmsg" && v.Type == bsoncore.TypeString:
			return bsoncore.AppendStringElement(dst, key, plan.mapBack(v.StringValue())), nil
		case key == "writeConcernError" && v.Type == bsoncore.TypeEmbeddedDocument && len(plan.names) > 0:
			doc, err := editDoc(nil, v.Data, plan.fixErrmsg, nil)
			return bsoncore.AppendDocumentElement(dst, key, doc), err
		case key == "writeErrors" && v.Type == bsoncore.TypeArray && len(plan.names) > 0:
			errs, _ := arrayDocs(v)
			out := make([][]byte, len(errs))
			for i, e := range errs {
				var err error
				if out[i], err = editDoc(nil, e, plan.fixErrmsg, nil); err != nil {
					return nil, err
				}
			}
			return appendArray(dst, key, out), nil
		case key == "value" && plan.strip != "" && v.Type == bsoncore.TypeEmbeddedDocument:
			return bsoncore.AppendDocumentElement(dst, key, stripField(v.Data, plan.strip)), nil
		case key == "databases" && plan.listDatabases != nil:
			return plan.filterDatabases(dst, v), nil
		case (key == "totalSize" || key == "totalSizeMb") && plan.listDatabases != nil:
			return dst, nil // recomputed for the tenant's databases below
		}
		return appendElem(dst, e), nil
	}, func(dst []byte) []byte {
		if plan.listDatabases != nil && ok {
			return bsoncore.AppendInt64Element(dst, "totalSize", plan.totalSize(reply))
		}
		return dst
	})
}

// needsFix is a cheap test that spares well-behaved replies a copy.
func (p *replyPlan) needsFix(reply bsoncore.Document) bool {
	if p.listDatabases != nil {
		return true
	}
	if p.strip != "" && bytes.Contains(reply, append([]byte(p.strip), 0)) {
		return true // some document may hold the tenant field
	}
	for mapped := range p.names {
		if bytes.Contains(reply, []byte(mapped)) {
			return true
		}
	}
	return false
}

func (p *replyPlan) fixCursor(dst []byte, e bsoncore.Element) ([]byte, error) {
	v := e.Value()
	switch key := e.Key(); {
	case key == "ns" && v.Type == bsoncore.TypeString:
		return bsoncore.AppendStringElement(dst, key, p.mapNamespace(v.StringValue())), nil
	case (key == "firstBatch" || key == "nextBatch") && p.strip != "" && v.Type == bsoncore.TypeArray:
		idx, dst := bsoncore.AppendArrayElementStart(dst, key)
		i := 0
		elements(v.Data, func(de bsoncore.Element) bool {
			if d, ok := de.Value().DocumentOK(); ok {
				dst = bsoncore.AppendDocumentElement(dst, strconv.Itoa(i), stripField(d, p.strip))
			} else {
				dst = bsoncore.AppendValueElement(dst, strconv.Itoa(i), de.Value())
			}
			i++
			return true
		})
		return bsoncore.AppendArrayEnd(dst, idx)
	}
	return appendElem(dst, e), nil
}

// fixErrmsg maps database names back in an errmsg element.
func (p *replyPlan) fixErrmsg(dst []byte, e bsoncore.Element) ([]byte, error) {
	if s, ok := e.Value().StringValueOK(); ok && e.Key() == "errmsg" {
		return bsoncore.AppendStringElement(dst, "errmsg", p.mapBack(s)), nil
	}
	return appendElem(dst, e), nil
}

// mapNamespace turns "mapped.coll" back into "db.coll".
func (p *replyPlan) mapNamespace(ns string) string {
	db, coll, found := strings.Cut(ns, ".")
	if app, ok := p.names[db]; ok && found {
		return app + "." + coll
	}
	if app, ok := p.names[ns]; ok {
		return app
	}
	return ns
}

// mapBack replaces the tenant's server database names in an error message.
func (p *replyPlan) mapBack(msg string) string {
	for mapped, app := range p.names {
		msg = strings.ReplaceAll(msg, mapped, app)
	}
	return msg
}

// mapDeep maps database names back in every string of doc, at any depth;
// errmsg strings also where a name appears inside them.
func (p *replyPlan) mapDeep(doc bsoncore.Document) bsoncore.Document {
	out, _ := editDoc(nil, doc, func(dst []byte, e bsoncore.Element) ([]byte, error) {
		v := e.Value()
		switch v.Type {
		case bsoncore.TypeString:
			s := v.StringValue()
			if e.Key() == "errmsg" {
				return bsoncore.AppendStringElement(dst, e.Key(), p.mapBack(s)), nil
			}
			return bsoncore.AppendStringElement(dst, e.Key(), p.mapNamespace(s)), nil
		case bsoncore.TypeEmbeddedDocument:
			return bsoncore.AppendDocumentElement(dst, e.Key(), p.mapDeep(v.Data)), nil
		case bsoncore.TypeArray:
			return bsoncore.AppendArrayElement(dst, e.Key(), p.mapDeep(v.Data)), nil
		}
		return appendElem(dst, e), nil
	}, nil)
	return out
}

// stripField returns doc without any top-level field named field.
func stripField(doc bsoncore.Document, field string) bsoncore.Document {
	if doc.Lookup(field).Type == 0 {
		return doc
	}
	out, _ := editDoc(nil, doc, func(dst []byte, e bsoncore.Element) ([]byte, error) {
		if e.Key() == field {
			return dst, nil
		}
		return appendElem(dst, e), nil
	}, nil)
	return out
}

// filterDatabases appends listDatabases' databases array with the tenant's
// databases only, renamed to their application names.
func (p *replyPlan) filterDatabases(dst []byte, v bsoncore.Value) []byte {
	idx, dst := bsoncore.AppendArrayElementStart(dst, "databases")
	i := 0
	p.eachDatabase(v, func(app string, entry bsoncore.Document) {
		out, _ := editDoc(nil, entry, func(dst []byte, e bsoncore.Element) ([]byte, error) {
			if e.Key() == "name" {
				return bsoncore.AppendStringElement(dst, "name", app), nil
			}
			return appendElem(dst, e), nil
		}, nil)
		dst = bsoncore.AppendDocumentElement(dst, strconv.Itoa(i), out)
		i++
	})
	dst, _ = bsoncore.AppendArrayEnd(dst, idx)
	return dst
}

// totalSize sums sizeOnDisk over the tenant's databases.
func (p *replyPlan) totalSize(reply bsoncore.Document) int64 {
	var total int64
	p.eachDatabase(reply.Lookup("databases"), func(_ string, entry bsoncore.Document) {
		if n, ok := entry.Lookup("sizeOnDisk").AsInt64OK(); ok {
			total += n
		}
	})
	return total
}

func (p *replyPlan) eachDatabase(v bsoncore.Value, f func(app string, entry bsoncore.Document)) {
	docs, _ := arrayDocs(v)
	for _, d := range docs {
		name, _ := d.Lookup("name").StringValueOK()
		if app, ok := p.listDatabases(name); ok {
			f(app, d)
		}
	}
}
