package mongo

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// fieldStagesAllowed are the stages that only transform the documents that
// reach them, so a pipeline that starts scoped stays scoped. Every stage not
// listed here or handled in rewriteStage is refused: $out, $merge,
// $changeStream, $currentOp, $collStats, $indexStats, $listSessions,
// $planCacheStats, $documents and whatever a later server adds.
var fieldStagesAllowed = map[string]bool{
	"$match": true, "$project": true, "$addFields": true, "$set": true, "$unset": true,
	"$group": true, "$sort": true, "$limit": true, "$skip": true, "$count": true,
	"$unwind": true, "$sortByCount": true, "$bucket": true, "$bucketAuto": true,
	"$replaceRoot": true, "$replaceWith": true, "$sample": true, "$redact": true,
	"$densify": true, "$fill": true, "$setWindowFields": true,
}

// firstOnlyStages must open the pipeline; the tenant goes into them (and a
// $match follows them), since nothing may come before them.
var firstOnlyStages = map[string]string{
	"$vectorSearch": "filter",
	"$geoNear":      "query",
	"$search":       "",
}

// appendPipeline appends the scoped pipeline under key. A pipeline that
// reads a collection (scoped false) starts with the tenant's $match; one
// fed with already scoped documents ($facet) does not.
func (f *fieldScoper) appendPipeline(dst []byte, key string, v bsoncore.Value, tenant string, scoped bool) ([]byte, error) {
	return f.appendScopedPipeline(dst, key, v, tenant, scoped, false)
}

// appendScopedPipeline is appendPipeline; with unset, the tenant field is
// also removed right after the tenant's $match ($lookup: the documents it
// nests must not show the field, and stages of the sub-pipeline such as
// $group with $$ROOT must not copy it either).
func (f *fieldScoper) appendScopedPipeline(dst []byte, key string, v bsoncore.Value, tenant string, scoped, unset bool) ([]byte, error) {
	stages, ok := arrayDocs(v)
	if !ok {
		return nil, refuse(codeFailedToParse, reasonMalformed, "%s must be an array of stages", key)
	}
	out := make([][]byte, 0, len(stages)+1)
	for i, st := range stages {
		name, err := stageName(st)
		if err != nil {
			return nil, err
		}
		if field, first := firstOnlyStages[name]; first {
			if i != 0 || scoped {
				return nil, refuse(codeUnauthorized, reasonForbidden, "%s must be the first stage of a pipeline that reads a collection", name)
			}
			stage, err := f.scopeFirstStage(st, name, field, tenant)
			if err != nil {
				return nil, err
			}
			out = append(out, stage)
			out = f.appendScope(out, tenant, unset)
			scoped = true
			continue
		}
		if !scoped {
			out = f.appendScope(out, tenant, unset)
			scoped = true
		}
		stage, err := f.rewriteStage(st, name, tenant)
		if err != nil {
			return nil, err
		}
		out = append(out, stage)
		if name == "$graphLookup" {
			out = f.appendUnsetNested(out, st.Lookup(name))
		}
	}
	if !scoped {
		out = f.appendScope(out, tenant, unset)
	}
	return appendArray(dst, key, out), nil
}

// appendScope appends the tenant's $match, and with unset a stage that
// removes the tenant field.
func (f *fieldScoper) appendScope(stages [][]byte, tenant string, unset bool) [][]byte {
	stages = append(stages, f.matchStage(tenant))
	if unset {
		stages = append(stages, bsoncore.BuildDocument(nil, bsoncore.AppendStringElement(nil, "$unset", f.field)))
	}
	return stages
}

// appendUnsetNested follows $graphLookup with {$unset: "<as>.<field>"}:
// the documents it nests under as (an array) lose the tenant field. It has
// no sub-pipeline to do that in. A missing or odd as is left to the server
// to refuse.
func (f *fieldScoper) appendUnsetNested(stages [][]byte, spec bsoncore.Value) [][]byte {
	doc, _ := spec.DocumentOK()
	as, ok := doc.Lookup("as").StringValueOK()
	if !ok || as == "" || strings.HasPrefix(as, "$") {
		return stages
	}
	return append(stages, bsoncore.BuildDocument(nil, bsoncore.AppendStringElement(nil, "$unset", as+"."+f.field)))
}

func (f *fieldScoper) matchStage(tenant string) []byte {
	return bsoncore.BuildDocument(nil, bsoncore.AppendDocumentElement(nil, "$match", f.tenantDoc(tenant)))
}

// scopeFirstStage puts the tenant into $vectorSearch's filter or $geoNear's
// query. $search has no plain filter to extend; the $match that follows it
// scopes its results.
func (f *fieldScoper) scopeFirstStage(stage bsoncore.Document, name, field, tenant string) ([]byte, error) {
	spec, ok := stage.Lookup(name).DocumentOK()
	if !ok {
		return nil, refuse(codeFailedToParse, reasonMalformed, "%s needs a document", name)
	}
	if field == "" {
		return stage, nil
	}
	out, err := f.wrapFilter(spec, field, tenant)
	if err != nil {
		return nil, err
	}
	return bsoncore.BuildDocument(nil, bsoncore.AppendDocumentElement(nil, name, out)), nil
}

// rewriteStage scopes one stage after the opening $match.
func (f *fieldScoper) rewriteStage(stage bsoncore.Document, name, tenant string) ([]byte, error) {
	if fieldStagesAllowed[name] {
		return stage, nil
	}
	spec := stage.Lookup(name)
	var out []byte
	var err error
	switch name {
	case "$lookup":
		out, err = f.rewriteLookup(spec, tenant)
	case "$unionWith":
		out, err = f.rewriteUnionWith(spec, tenant)
	case "$graphLookup":
		out, err = f.rewriteGraphLookup(spec, tenant)
	case "$facet":
		out, err = f.rewriteFacet(spec, tenant)
	default:
		return nil, refuse(codeUnauthorized, reasonForbidden, "stage %s is not allowed in field mode", name)
	}
	if err != nil {
		return nil, err
	}
	return bsoncore.BuildDocument(nil, bsoncore.AppendDocumentElement(nil, name, out)), nil
}

// rewriteLookup scopes the foreign side of $lookup: a sub-pipeline gets the
// tenant's $match first, then an $unset of the tenant field (the joined
// documents are nested in the result, where the reply's top-level strip
// does not reach); the localField/foreignField form gets a sub-pipeline
// holding just those two stages (MongoDB 5.0 combines both).
func (f *fieldScoper) rewriteLookup(spec bsoncore.Value, tenant string) ([]byte, error) {
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, refuse(codeFailedToParse, reasonMalformed, "$lookup needs a document")
	}
	if err := sameDatabase(doc, "$lookup", "from"); err != nil {
		return nil, err
	}
	return f.withSubPipeline(doc, tenant, true)
}

// withSubPipeline scopes doc's "pipeline", adding one if it has none.
func (f *fieldScoper) withSubPipeline(doc bsoncore.Document, tenant string, unset bool) ([]byte, error) {
	seen := false
	return editDoc(nil, doc, func(dst []byte, e bsoncore.Element) ([]byte, error) {
		if e.Key() != "pipeline" {
			return appendElem(dst, e), nil
		}
		seen = true
		return f.appendScopedPipeline(dst, "pipeline", e.Value(), tenant, false, unset)
	}, func(dst []byte) []byte {
		if seen {
			return dst
		}
		return appendArray(dst, "pipeline", f.appendScope(nil, tenant, unset))
	})
}

// rewriteUnionWith turns {$unionWith: "c"} into {coll: "c", pipeline:
// [{$match}]} and scopes the pipeline of the document form.
func (f *fieldScoper) rewriteUnionWith(spec bsoncore.Value, tenant string) ([]byte, error) {
	if coll, ok := spec.StringValueOK(); ok {
		spec = bsoncore.Value{Type: bsoncore.TypeEmbeddedDocument, Data: bsoncore.BuildDocument(nil, bsoncore.AppendStringElement(nil, "coll", coll))}
	}
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, refuse(codeFailedToParse, reasonMalformed, "$unionWith needs a collection name or a document")
	}
	if err := sameDatabase(doc, "$unionWith", "coll"); err != nil {
		return nil, err
	}
	// Its documents come out at the top level, where the reply loses the
	// field; an $unset here would only cost the server time.
	return f.withSubPipeline(doc, tenant, false)
}

// rewriteGraphLookup scopes every hop with restrictSearchWithMatch.
func (f *fieldScoper) rewriteGraphLookup(spec bsoncore.Value, tenant string) ([]byte, error) {
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, refuse(codeFailedToParse, reasonMalformed, "$graphLookup needs a document")
	}
	if err := sameDatabase(doc, "$graphLookup", "from"); err != nil {
		return nil, err
	}
	return f.wrapFilter(doc, "restrictSearchWithMatch", tenant)
}

// rewriteFacet checks each facet; their input is already scoped.
func (f *fieldScoper) rewriteFacet(spec bsoncore.Value, tenant string) ([]byte, error) {
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, refuse(codeFailedToParse, reasonMalformed, "$facet needs a document")
	}
	return editDoc(nil, doc, func(dst []byte, e bsoncore.Element) ([]byte, error) {
		return f.appendPipeline(dst, e.Key(), e.Value(), tenant, true)
	}, nil)
}

// sameDatabase requires spec to name its foreign collection under key, as
// a string, exactly once, and no database.
func sameDatabase(spec bsoncore.Document, stage, key string) error {
	n := 0
	bad := false
	elements(spec, func(e bsoncore.Element) bool {
		switch e.Key() {
		case key:
			n++
			bad = bad || e.Value().Type != bsoncore.TypeString
		case "db":
			bad = true
		}
		return !bad
	})
	if bad || n != 1 {
		return refuse(codeUnauthorized, reasonForbidden, "%s must name one collection of the same database in %s", stage, key)
	}
	return nil
}
