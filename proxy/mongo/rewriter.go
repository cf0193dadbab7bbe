package mongo

import (
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// scoper is what a mode (database or field) does to an allowed command.
type scoper interface {
	scope(cmd *command, class commandClass, tenant string) (*OpMsg, *replyPlan, error)
}

// CommandRewriter turns a client command into the command sent upstream
// for one tenant, or refuses it. It is shared by all sessions of a listener
// and holds no per-session state besides the cursor table.
type CommandRewriter struct {
	scoper  scoper
	cursors *CursorTable
}

// cursorUse says what a command does with cursors.
type cursorUse int

const (
	cursorNone cursorUse = iota
	cursorOpens
	cursorContinues
	cursorKills
)

// replyPlan is what must be done to the upstream's reply to a rewritten
// command before the client sees it.
type replyPlan struct {
	cursor   cursorUse
	cursorID int64   // getMore's cursor
	killed   []int64 // killCursors' cursors
	// names maps the tenant's server databases back to the application's
	// (database mode).
	names map[string]string
	// strip is the tenant field removed from returned documents (field mode).
	strip string
	// deep maps the database names in every string of the reply, at any
	// depth (database mode, explain output): values equal to a mapped name
	// or namespace ("shop__acme", "shop__acme.docs") turn back into the
	// application's.
	deep bool
	// listDatabases keeps the tenant's databases only, under their
	// application names (database mode); nil otherwise.
	listDatabases func(server string) (app string, ok bool)
}

func cursorUseOf(class commandClass) cursorUse {
	switch class {
	case classFind, classAggregate, classCollection:
		return cursorOpens
	case classGetMore:
		return cursorContinues
	case classKillCursors:
		return cursorKills
	}
	return cursorNone
}

// Rewrite checks cmd against the allowlist, the reserved databases,
// JavaScript operators and cursor ownership, then scopes it to tenant.
func (r *CommandRewriter) Rewrite(cmd *command, tenant string) (*OpMsg, *replyPlan, error) {
	class, ok := commandClasses[cmd.Name]
	if !ok {
		return nil, nil, refuse(codeCommandNotFound, reasonUnknownCommand, "command %q is not supported through tenantgate", cmd.Name)
	}
	if adminClass(class) {
		if cmd.DB != "admin" {
			return nil, nil, refuse(codeUnauthorized, reasonNamespace, "%s may only be run against the admin database", cmd.Name)
		}
	} else if reservedDB(cmd.DB) {
		return nil, nil, refuse(codeUnauthorized, reasonNamespace, "database %q is off limits through tenantgate", cmd.DB)
	}
	if err := refuseSequences(cmd); err != nil {
		return nil, nil, err
	}
	if err := refuseDuplicateKeys(cmd); err != nil {
		return nil, nil, err
	}
	if err := refuseJS(cmd); err != nil {
		return nil, nil, err
	}
	var getMoreID int64
	var killed []int64
	switch class {
	case classGetMore:
		id, ok := cmd.Msg.Body.Lookup(cmd.Name).Int64OK()
		if !ok || !r.cursors.Owns(id, tenant) {
			return nil, nil, refuse(codeCursorNotFound, reasonCursor, "cursor id %d not found", id)
		}
		getMoreID = id
	case classKillCursors:
		var err error
		if killed, err = r.ownedCursors(cmd.Msg.Body, tenant); err != nil {
			return nil, nil, err
		}
	}
	out, plan, err := r.scoper.scope(cmd, class, tenant)
	if err != nil {
		return nil, nil, err
	}
	plan.cursor, plan.cursorID, plan.killed = cursorUseOf(class), getMoreID, killed
	return out, plan, nil
}

func (r *CommandRewriter) ownedCursors(body bsoncore.Document, tenant string) ([]int64, error) {
	arr, ok := body.Lookup("cursors").ArrayOK()
	if !ok {
		return nil, refuse(codeFailedToParse, reasonMalformed, "killCursors needs a cursors array")
	}
	var ids []int64
	var err error
	elements(bsoncore.Document(arr), func(e bsoncore.Element) bool {
		id, ok := e.Value().Int64OK()
		if !ok || !r.cursors.Owns(id, tenant) {
			err = refuse(codeCursorNotFound, reasonCursor, "cursor id %d not found", id)
			return false
		}
		ids = append(ids, id)
		return true
	})
	return ids, err
}
