package mongo

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// databaseScoper implements mode "database": every tenant has its own
// databases, so scoping a command means renaming every database it names.
type databaseScoper struct {
	names *DatabaseNamer
}

// dbStagesRefused are pipeline stages that see beyond one database.
var dbStagesRefused = map[string]bool{
	"$currentOp": true, "$listSessions": true, "$listLocalSessions": true,
	"$shardedDataDistribution": true, "$listSampledQueries": true, "$querySettings": true,
	"$listClusterCatalog": true, "$changeStream": true,
}

func (d *databaseScoper) scope(cmd *command, class commandClass, tenant string) (*OpMsg, *replyPlan, error) {
	plan := &replyPlan{names: map[string]string{}}
	out := *cmd.Msg
	var err error
	switch class {
	case classTransaction:
		return &out, plan, nil
	case classListDatabase:
		if f, ok := cmd.Msg.Body.Lookup("filter").DocumentOK(); ok && !emptyDoc(f) {
			return nil, nil, refuse(codeIllegalOperation, reasonUnsupported, "listDatabases with a filter is not supported through tenantgate; filter the names in the application")
		}
		plan.listDatabases = func(server string) (string, bool) { return d.names.Unmap(server, tenant) }
		out.Body, err = editDoc(nil, cmd.Msg.Body, func(dst []byte, e bsoncore.Element) ([]byte, error) {
			switch e.Key() {
			case "filter", "authorizedDatabases":
				return dst, nil
			}
			return appendElem(dst, e), nil
		}, nil)
		return &out, plan, err
	case classRename:
		out.Body, err = editDoc(nil, cmd.Msg.Body, func(dst []byte, e bsoncore.Element) ([]byte, error) {
			switch k := e.Key(); k {
			case "renameCollection", "to":
				ns, ok := e.Value().StringValueOK()
				if !ok {
					return nil, refuse(codeFailedToParse, reasonMalformed, "%s must be a namespace string", k)
				}
				mapped, err := d.mapNamespace(ns, tenant, plan)
				return bsoncore.AppendStringElement(dst, k, mapped), err
			}
			return appendElem(dst, e), nil
		}, nil)
		return &out, plan, err
	}
	mapped, err := d.names.Map(cmd.DB, tenant)
	if err != nil {
		return nil, nil, err
	}
	plan.names[mapped] = cmd.DB
	// Explain output names the server's databases anywhere (the command it
	// ran, namespaces of every stage).
	explain, _ := cmd.Msg.Body.Lookup("explain").BooleanOK()
	plan.deep = class == classExplain || explain
	out.Body, err = d.rewriteBody(cmd.Msg.Body, mapped, tenant, plan)
	return &out, plan, err
}

// rewriteBody renames $db and the databases named inside the command.
func (d *databaseScoper) rewriteBody(body bsoncore.Document, mapped, tenant string, plan *replyPlan) (bsoncore.Document, error) {
	return editDoc(nil, body, func(dst []byte, e bsoncore.Element) ([]byte, error) {
		v := e.Value()
		switch k := e.Key(); k {
		case "$db":
			return bsoncore.AppendStringElement(dst, k, mapped), nil
		case "pipeline":
			return d.appendPipeline(dst, k, v, tenant, plan)
		case "explain":
			inner, ok := v.DocumentOK()
			if !ok {
				return appendElem(dst, e), nil // aggregate's explain: true
			}
			if err := explainable(inner); err != nil {
				return nil, err
			}
			out, err := d.rewriteBody(inner, mapped, tenant, plan)
			return bsoncore.AppendDocumentElement(dst, k, out), err
		}
		return appendElem(dst, e), nil
	}, nil)
}

// explainable refuses explain of commands that are not plain reads/writes,
// and inner commands with duplicate keys.
func explainable(inner bsoncore.Document) error {
	name := firstKey(inner)
	switch commandClasses[name] {
	case classFind, classCount, classDistinct, classAggregate, classUpdate, classDelete, classFindAndModify:
		return refuseDuplicateKeys(&command{Name: name, Msg: &OpMsg{Body: inner}})
	}
	return refuse(codeCommandNotFound, reasonUnknownCommand, "explain of %q is not supported through tenantgate", name)
}

func (d *databaseScoper) mapNamespace(ns, tenant string, plan *replyPlan) (string, error) {
	db, coll, ok := strings.Cut(ns, ".")
	if !ok || coll == "" {
		return "", refuse(codeInvalidNamespace, reasonNamespace, "invalid namespace %q", ns)
	}
	mapped, err := d.names.Map(db, tenant)
	if err != nil {
		return "", err
	}
	plan.names[mapped] = db
	return mapped + "." + coll, nil
}

// appendPipeline walks a pipeline: server-wide stages are refused, $out and
// $merge targets in other databases are renamed, sub-pipelines are walked.
func (d *databaseScoper) appendPipeline(dst []byte, key string, v bsoncore.Value, tenant string, plan *replyPlan) ([]byte, error) {
	stages, ok := arrayDocs(v)
	if !ok {
		return nil, refuse(codeFailedToParse, reasonMalformed, "%s must be an array of stages", key)
	}
	out := make([][]byte, len(stages))
	for i, st := range stages {
		var err error
		if out[i], err = d.rewriteStage(st, tenant, plan); err != nil {
			return nil, err
		}
	}
	return appendArray(dst, key, out), nil
}

func (d *databaseScoper) rewriteStage(stage bsoncore.Document, tenant string, plan *replyPlan) ([]byte, error) {
	name, err := stageName(stage)
	if err != nil {
		return nil, err
	}
	if dbStagesRefused[name] {
		return nil, refuse(codeUnauthorized, reasonForbidden, "stage %s is not allowed through tenantgate", name)
	}
	spec := stage.Lookup(name)
	specDoc, isDoc := spec.DocumentOK()
	if !isDoc {
		return stage, nil // $out: "coll", $unionWith: "coll", $limit: 5 ...
	}
	var edit editFunc
	switch name {
	case "$out", "$merge":
		edit = func(dst []byte, e bsoncore.Element) ([]byte, error) {
			switch e.Key() {
			case "db":
				db, ok := e.Value().StringValueOK()
				if !ok {
					return nil, refuse(codeFailedToParse, reasonMalformed, "%s.db must be a string", name)
				}
				mapped, err := d.names.Map(db, tenant)
				plan.names[mapped] = db
				return bsoncore.AppendStringElement(dst, "db", mapped), err
			case "into":
				into, ok := e.Value().DocumentOK()
				if !ok {
					return appendElem(dst, e), nil
				}
				out, err := editDoc(nil, into, edit, nil)
				return bsoncore.AppendDocumentElement(dst, "into", out), err
			case "whenMatched":
				if e.Value().Type == bsoncore.TypeArray {
					return d.appendPipeline(dst, "whenMatched", e.Value(), tenant, plan)
				}
			}
			return appendElem(dst, e), nil
		}
	case "$lookup", "$unionWith", "$graphLookup":
		edit = func(dst []byte, e bsoncore.Element) ([]byte, error) {
			switch e.Key() {
			case "from", "coll", "db":
				if e.Key() == "db" || e.Value().Type != bsoncore.TypeString {
					return nil, refuse(codeUnauthorized, reasonNamespace, "%s may only name a collection of the same database", name)
				}
			case "pipeline":
				return d.appendPipeline(dst, "pipeline", e.Value(), tenant, plan)
			}
			return appendElem(dst, e), nil
		}
	case "$facet":
		edit = func(dst []byte, e bsoncore.Element) ([]byte, error) {
			return d.appendPipeline(dst, e.Key(), e.Value(), tenant, plan)
		}
	default:
		return stage, nil
	}
	out, err := editDoc(nil, specDoc, edit, nil)
	if err != nil {
		return nil, err
	}
	return bsoncore.BuildDocument(nil, bsoncore.AppendDocumentElement(nil, name, out)), nil
}
