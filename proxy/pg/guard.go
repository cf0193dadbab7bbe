package pg

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Rules are the stable reason codes of refused statements (metric labels,
// audit reasons, and the bracketed tag in the client's error message).
const (
	RuleUnparsable    = "unparsable"
	RuleTenantSetting = "tenant_setting"
	RuleSetConfig     = "set_config"
	RuleRoleChange    = "role_change"
	RuleCode          = "server_code"    // DO, CREATE FUNCTION/PROCEDURE, LOAD
	RuleServerAdmin   = "server_admin"   // ALTER SYSTEM, admin and file functions, 2PC
	RuleServerFiles   = "server_files"   // COPY PROGRAM, COPY to/from a file
	RuleLargeObject   = "large_object"   // lo_* functions
	RuleDynamicSQL    = "dynamic_sql"    // functions that run SQL text
	RuleNotify        = "listen_notify"  // LISTEN, NOTIFY, pg_notify
	RuleSessionState  = "session_state"  // state that outlives a pooled transaction
	RuleDDL           = "ddl"            // schema changes with postgres.ddl: refuse
	RuleTruncate      = "truncate"       // TRUNCATE ignores Row-Level Security
	RuleReservedName  = "reserved_name"  // names the proxy keeps for itself
	RuleResetPosition = "reset_position" // RESET ALL/DISCARD ALL followed by more statements
	RuleFunctionCall  = "function_call"  // the fast-path FunctionCall message
	RuleLexing        = "lexer_setting"  // settings that change how statements are read
	RuleRowSecurity   = "row_security"   // policies, RLS switches, ownership: even with ddl: allow
	RuleActivity      = "activity"       // other sessions' statement texts (pg_stat_activity)
	RuleTableLock     = "table_lock"     // LOCK modes that block other tenants' reads or writes
)

// lexerSettings change how the server tokenizes statements; were they to
// differ from what the guard's parser assumes (UTF-8, standard conforming
// strings), a statement could mean one thing to the guard and another to
// the server.
var lexerSettings = map[string]bool{
	"client_encoding": true, "names": true, "standard_conforming_strings": true, "backslash_quote": true,
}

// reservedPrefix starts the names of the prepared statements and portals the
// proxy creates on server connections. Clients may not use it.
const reservedPrefix = "tenantgate_"

// Effect is what an allowed statement does to its server connection that the
// proxy must know about.
type Effect uint8

const (
	// EffectPin: the statement creates session state (a session-level SET,
	// PREPARE); in transaction pooling the client keeps its server
	// connection for the rest of its session.
	EffectPin Effect = 1 << iota
	// EffectReset: settings were reset (RESET, RESET ALL, DISCARD ALL); the
	// tenant and the client's parameters are applied again before anything
	// else runs.
	EffectReset
	// EffectDeallocate: server-side prepared statements were dropped
	// (DISCARD ALL, DEALLOCATE ALL).
	EffectDeallocate
	// EffectCopyIn: the statement is a COPY ... FROM STDIN, after which the
	// server waits for the client's data (the session's goroutine relays
	// it; the event loop does not).
	EffectCopyIn
)

// Refusal says why a statement is refused.
type Refusal struct {
	Rule    string
	Message string
	Code    string // SQLSTATE
}

func (r *Refusal) Error() string { return "tenantgate [" + r.Rule + "]: " + r.Message }

// IfNotExists names the object of an idempotent CREATE ... IF NOT EXISTS
// that DDL refusal may answer without running (see Engine).
type IfNotExists struct {
	Kind   string // "relation" or "extension"
	Schema string // "" when not qualified
	Name   string
	Tag    string // the CommandComplete tag: CREATE TABLE, CREATE INDEX, CREATE EXTENSION
}

// Verdict is the guard's decision on one statement text (a simple Query
// string, which may hold several statements, or the text of one Parse).
// Verdicts are cached and shared: never modify one.
type Verdict struct {
	Refusal *Refusal
	Effects Effect
	// Deallocate names the statement of a text that is one DEALLOCATE name:
	// when the client prepared it with the protocol, the proxy answers it.
	Deallocate string
	// IfNotExists is set, with a DDL refusal, when the text is one
	// CREATE ... IF NOT EXISTS: the engine answers it when the object exists.
	IfNotExists *IfNotExists
	// ReadsLiterals: the verdict depends on the value of a string literal
	// (SET ROLE 'none' is allowed, SET ROLE 'x' is not), so it may not be
	// shared by texts that differ only in their literals (verdictkey.go).
	ReadsLiterals bool
}

// GuardOptions configures a Guard.
type GuardOptions struct {
	TenantSetting   string // e.g. app.tenant_id
	TransactionMode bool   // refuse state that would outlive a pooled transaction
	AllowDDL        bool
}

// Guard decides, from PostgreSQL's own parse tree, whether a statement may
// reach the server. It is pure: the same text always gets the same verdict,
// which is what makes caching verdicts by text safe.
type Guard struct {
	prefix string // lower-case tenant setting prefix including the dot, e.g. "app."
	opts   GuardOptions
}

// NewGuard returns a guard for opts.
func NewGuard(opts GuardOptions) *Guard {
	prefix := strings.ToLower(opts.TenantSetting)
	if i := strings.IndexByte(prefix, '.'); i >= 0 {
		prefix = prefix[:i+1]
	}
	return &Guard{prefix: prefix, opts: opts}
}

func refuse(rule, format string, args ...any) *Verdict {
	return &Verdict{Refusal: &Refusal{Rule: rule, Message: fmt.Sprintf(format, args...), Code: "42501"}}
}

// Check parses sql and returns its verdict.
func (g *Guard) Check(sql string) *Verdict {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		v := refuse(RuleUnparsable, "the statement could not be parsed, so it was not forwarded: %v", err)
		v.Refusal.Code = "42601"
		return v
	}
	out := &Verdict{}
	stmts := tree.GetStmts()
	for _, raw := range stmts {
		if out.Effects&EffectReset != 0 {
			v := refuse(RuleResetPosition, "RESET and DISCARD ALL must be the last statement of a query string, so that the proxy can apply the tenant again before anything else runs")
			v.ReadsLiterals = out.ReadsLiterals
			return v
		}
		v := g.checkStmt(raw.GetStmt(), stmtText(sql, raw))
		if v.Refusal != nil {
			if v.IfNotExists != nil && len(stmts) > 1 {
				// Only a statement on its own can be answered without running it.
				return &Verdict{Refusal: v.Refusal, ReadsLiterals: out.ReadsLiterals}
			}
			v.ReadsLiterals = v.ReadsLiterals || out.ReadsLiterals
			return v
		}
		out.ReadsLiterals = out.ReadsLiterals || v.ReadsLiterals
		out.Effects |= v.Effects
		if len(stmts) == 1 {
			out.Deallocate = v.Deallocate
		}
	}
	return out
}

// stmtText is raw's own text within sql (all of sql should the parser's
// offsets ever not fit).
func stmtText(sql string, raw *pg_query.RawStmt) string {
	start, n := int(raw.GetStmtLocation()), int(raw.GetStmtLen())
	if n == 0 {
		n = len(sql) - start // the last statement runs to the end
	}
	if start < 0 || n < 0 || start+n > len(sql) {
		return sql
	}
	return sql[start : start+n]
}

// checkStmt judges one top-level statement: first its kind, then every node
// below it.
func (g *Guard) checkStmt(stmt *pg_query.Node, text string) *Verdict {
	v := g.checkTopLevel(stmt, text)
	if v.Refusal != nil {
		return v
	}
	var refusal *Verdict
	walk(stmt.ProtoReflect(), func(m protoreflect.ProtoMessage) bool {
		if r := g.checkNode(m); r != nil {
			refusal = r
			return false
		}
		return true
	})
	if refusal != nil {
		refusal.ReadsLiterals = v.ReadsLiterals
		return refusal
	}
	return v
}

// walk calls visit on m and on every message below it, depth first, until
// visit returns false. It walks the protobuf tree generically, so no node
// type can hide a function call from the guard.
func walk(m protoreflect.Message, visit func(protoreflect.ProtoMessage) bool) bool {
	if !m.IsValid() {
		return true
	}
	if !visit(m.Interface()) {
		return false
	}
	ok := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && ok; i++ {
				ok = walk(l.Get(i).Message(), visit)
			}
			return ok
		}
		ok = walk(v.Message(), visit)
		return ok
	})
	return ok
}

// checkTopLevel applies the rules that depend on the statement's kind; text
// is the statement's own text.
func (g *Guard) checkTopLevel(stmt *pg_query.Node, text string) *Verdict {
	allowed := &Verdict{}
	switch n := stmt.GetNode().(type) {
	case *pg_query.Node_SelectStmt, *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt,
		*pg_query.Node_DeleteStmt, *pg_query.Node_MergeStmt, *pg_query.Node_VariableShowStmt,
		*pg_query.Node_ExplainStmt, *pg_query.Node_FetchStmt, *pg_query.Node_ClosePortalStmt,
		*pg_query.Node_ExecuteStmt, *pg_query.Node_CallStmt, *pg_query.Node_ConstraintsSetStmt:
		return allowed
	case *pg_query.Node_LockStmt:
		// A table lock holds the whole table, every tenant's rows. SHARE
		// and stronger block other tenants' INSERT/UPDATE/DELETE (ACCESS
		// EXCLUSIVE, the default, their SELECTs too) for as long as the
		// transaction stays open. The weaker modes are what ordinary
		// statements take anyway. With ddl: allow, ALTER TABLE could hold
		// the same locks, so they are allowed there.
		const shareLock = 5 // ShareLock in lockdefs.h; stronger modes are larger
		if !g.opts.AllowDDL && n.LockStmt.GetMode() >= shareLock {
			return refuse(RuleTableLock, "LOCK TABLE in SHARE mode or stronger blocks other tenants' statements on the table; use SELECT ... FOR UPDATE on your own rows, or a weaker mode (ROW EXCLUSIVE, SHARE UPDATE EXCLUSIVE)")
		}
		return allowed
	case *pg_query.Node_TransactionStmt:
		switch n.TransactionStmt.GetKind() {
		case pg_query.TransactionStmtKind_TRANS_STMT_PREPARE, pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED,
			pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
			return refuse(RuleServerAdmin, "two-phase commit (PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED) is not allowed through the proxy")
		}
		return allowed
	case *pg_query.Node_VariableSetStmt:
		return g.checkSet(n.VariableSetStmt)
	case *pg_query.Node_DiscardStmt:
		if n.DiscardStmt.GetTarget() == pg_query.DiscardMode_DISCARD_ALL {
			return &Verdict{Effects: EffectReset | EffectDeallocate}
		}
		return allowed
	case *pg_query.Node_CopyStmt:
		c := n.CopyStmt
		if c.GetIsProgram() {
			return refuse(RuleServerFiles, "COPY ... PROGRAM runs a program on the database server")
		}
		if c.GetFilename() != "" || copyNamesFile(text) {
			return refuse(RuleServerFiles, "COPY to or from a server file is not allowed; use COPY ... FROM STDIN or TO STDOUT")
		}
		if c.GetIsFrom() {
			return &Verdict{Effects: EffectCopyIn}
		}
		return allowed
	case *pg_query.Node_PrepareStmt:
		if strings.HasPrefix(strings.ToLower(n.PrepareStmt.GetName()), reservedPrefix) {
			return refuse(RuleReservedName, "prepared statement names starting with %q are reserved for the proxy", reservedPrefix)
		}
		return &Verdict{Effects: EffectPin}
	case *pg_query.Node_DeallocateStmt:
		d := n.DeallocateStmt
		if d.GetIsall() || d.GetName() == "" {
			return &Verdict{Effects: EffectDeallocate}
		}
		if strings.HasPrefix(strings.ToLower(d.GetName()), reservedPrefix) {
			return refuse(RuleReservedName, "prepared statement names starting with %q are reserved for the proxy", reservedPrefix)
		}
		return &Verdict{Deallocate: d.GetName()}
	case *pg_query.Node_DeclareCursorStmt:
		const cursorOptHold = 0x0020 // CURSOR_OPT_HOLD in parsenodes.h
		if g.opts.TransactionMode && n.DeclareCursorStmt.GetOptions()&cursorOptHold != 0 {
			return refuse(RuleSessionState, "DECLARE ... WITH HOLD outlives the transaction, and in transaction pooling the server connection goes to another client after it")
		}
		return allowed
	case *pg_query.Node_ListenStmt:
		return refuse(RuleNotify, "LISTEN is not allowed: notification channels are shared by all tenants")
	case *pg_query.Node_NotifyStmt:
		return refuse(RuleNotify, "NOTIFY is not allowed: notification channels are shared by all tenants")
	case *pg_query.Node_UnlistenStmt:
		if n.UnlistenStmt.GetConditionname() == "" {
			return allowed // UNLISTEN *: nothing can be listened to, so a no-op (asyncpg's reset runs it)
		}
		return refuse(RuleNotify, "UNLISTEN is not allowed: notification channels are shared by all tenants")
	case *pg_query.Node_DoStmt:
		return refuse(RuleCode, "DO blocks run procedural code the proxy cannot inspect")
	case *pg_query.Node_CreateFunctionStmt:
		return refuse(RuleCode, "CREATE FUNCTION and CREATE PROCEDURE define code the proxy cannot inspect")
	case *pg_query.Node_LoadStmt:
		return refuse(RuleCode, "LOAD loads a shared library into the server")
	case *pg_query.Node_AlterSystemStmt:
		return refuse(RuleServerAdmin, "ALTER SYSTEM changes the server's configuration")
	case *pg_query.Node_AlterRoleSetStmt, *pg_query.Node_AlterDatabaseSetStmt:
		return refuse(RuleTenantSetting, "ALTER ROLE/DATABASE ... SET changes settings of every future session, the tenant setting's included")
	case *pg_query.Node_AlterRoleStmt, *pg_query.Node_CreateRoleStmt, *pg_query.Node_DropRoleStmt,
		*pg_query.Node_GrantRoleStmt, *pg_query.Node_GrantStmt, *pg_query.Node_AlterDefaultPrivilegesStmt,
		*pg_query.Node_ReassignOwnedStmt, *pg_query.Node_DropOwnedStmt:
		return refuse(RuleRoleChange, "roles and privileges are managed by the operator, not through the proxy")
	case *pg_query.Node_TruncateStmt:
		return refuse(RuleTruncate, "TRUNCATE removes every tenant's rows (Row-Level Security does not apply to it); use DELETE")
	case *pg_query.Node_CheckPointStmt:
		return refuse(RuleServerAdmin, "CHECKPOINT is a server administration command")
	case *pg_query.Node_CreateStmt:
		if ine := createIfNotExists(n.CreateStmt.GetIfNotExists(), n.CreateStmt.GetRelation(), "CREATE TABLE"); ine != nil {
			return g.ddl(ine)
		}
	case *pg_query.Node_IndexStmt:
		if n.IndexStmt.GetIfNotExists() && n.IndexStmt.GetIdxname() != "" {
			schema := n.IndexStmt.GetRelation().GetSchemaname() // an index lives in its table's schema
			return g.ddl(&IfNotExists{Kind: "relation", Schema: schema, Name: n.IndexStmt.GetIdxname(), Tag: "CREATE INDEX"})
		}
	case *pg_query.Node_CreateExtensionStmt:
		if n.CreateExtensionStmt.GetIfNotExists() {
			return g.ddl(&IfNotExists{Kind: "extension", Name: n.CreateExtensionStmt.GetExtname(), Tag: "CREATE EXTENSION"})
		}
	}
	// Everything else changes the schema or the server: DDL.
	return g.ddl(nil)
}

// copyNamesFile reports whether a COPY statement's source or target is a
// string literal, that is a server file. The parse tree cannot tell a COPY
// from an empty string literal (a file with an empty name) from a COPY from
// STDIN: both have an empty filename. So this reads the statement's tokens:
// the first FROM or TO outside parentheses, then, past PROGRAM and comments,
// either STDIN/STDOUT or a literal. A text the scanner rejects counts as a
// file.
func copyNamesFile(text string) bool {
	scan, err := pg_query.Scan(text)
	if err != nil {
		return true
	}
	toks := scan.GetTokens()
	depth := 0
	for i, t := range toks {
		switch t.GetToken() {
		case pg_query.Token_ASCII_40:
			depth++
		case pg_query.Token_ASCII_41:
			depth--
		case pg_query.Token_FROM, pg_query.Token_TO:
			if depth != 0 {
				continue
			}
			for _, next := range toks[i+1:] {
				switch next.GetToken() {
				case pg_query.Token_PROGRAM, pg_query.Token_SQL_COMMENT, pg_query.Token_C_COMMENT:
					continue
				case pg_query.Token_SCONST, pg_query.Token_USCONST:
					return true
				}
				return false
			}
			return false
		}
	}
	return false
}

func createIfNotExists(ine bool, rel *pg_query.RangeVar, tag string) *IfNotExists {
	if !ine || rel == nil || rel.GetRelpersistence() == "t" {
		return nil
	}
	return &IfNotExists{Kind: "relation", Schema: rel.GetSchemaname(), Name: rel.GetRelname(), Tag: tag}
}

// ddl is the verdict on a schema change: allowed when configured, else
// refused, or (for CREATE ... IF NOT EXISTS) left to the engine, which
// answers it when the object exists.
func (g *Guard) ddl(ine *IfNotExists) *Verdict {
	if g.opts.AllowDDL {
		return &Verdict{}
	}
	v := refuse(RuleDDL, "schema changes are not allowed through the proxy (postgres.ddl: refuse); apply the schema with `tenantgate pg migrate` or directly as the owner")
	v.IfNotExists = ine
	return v
}

// checkSet judges SET, SET LOCAL and RESET.
func (g *Guard) checkSet(s *pg_query.VariableSetStmt) *Verdict {
	// GUC names are case-insensitive; the parser has already decoded quoting
	// and U&"" escapes.
	name := strings.ToLower(s.GetName())
	kind := s.GetKind()
	switch {
	case kind == pg_query.VariableSetKind_VAR_RESET_ALL:
		return &Verdict{Effects: EffectReset}
	case kind == pg_query.VariableSetKind_VAR_RESET && strings.HasPrefix(name, g.prefix):
		// RESET app.tenant_id does what RESET ALL does to it; the proxy
		// applies the tenant again before anything else runs.
		return &Verdict{Effects: EffectReset}
	case strings.HasPrefix(name, g.prefix):
		return refuse(RuleTenantSetting, "settings under %q are reserved for the tenant context set by the proxy", g.prefix)
	case lexerSettings[name] && kind != pg_query.VariableSetKind_VAR_RESET:
		return refuse(RuleLexing, "%s cannot be changed through the proxy: the guard reads statements as UTF-8 with standard conforming strings", name)
	case name == "role" || name == "session_authorization":
		if kind == pg_query.VariableSetKind_VAR_RESET || kind == pg_query.VariableSetKind_VAR_SET_DEFAULT {
			return &Verdict{Effects: EffectReset}
		}
		if isSetRoleNone(s) {
			return &Verdict{Effects: EffectReset, ReadsLiterals: true}
		}
		v := refuse(RuleRoleChange, "SET ROLE and SET SESSION AUTHORIZATION are not allowed: the proxy's role is what Row-Level Security is enforced on")
		v.ReadsLiterals = true // the role is a literal: 'none' would be allowed
		return v
	case kind == pg_query.VariableSetKind_VAR_RESET:
		return &Verdict{Effects: EffectReset}
	case s.GetIsLocal():
		return &Verdict{}
	case kind == pg_query.VariableSetKind_VAR_SET_MULTI && name == "transaction":
		return &Verdict{} // SET TRANSACTION: this transaction only
	case kind == pg_query.VariableSetKind_VAR_SET_MULTI && name == "transaction snapshot":
		return &Verdict{}
	}
	return &Verdict{Effects: EffectPin}
}

func isSetRoleNone(s *pg_query.VariableSetStmt) bool {
	if len(s.GetArgs()) != 1 {
		return false
	}
	c := s.GetArgs()[0].GetAConst()
	return c != nil && strings.EqualFold(c.GetSval().GetSval(), "none")
}

// checkNode applies the rules that hold for a node anywhere in a statement.
func (g *Guard) checkNode(m protoreflect.ProtoMessage) *Verdict {
	switch n := m.(type) {
	case *pg_query.FuncCall:
		return g.checkFunc(n)
	case *pg_query.RangeVar:
		if activityRelations[strings.ToLower(n.GetRelname())] {
			return refuse(RuleActivity, "%s shows the statements of other sessions, and so other tenants' values; it is not readable through the proxy", strings.ToLower(n.GetRelname()))
		}
		if g.opts.TransactionMode && n.GetRelpersistence() == "t" {
			return refuse(RuleSessionState, "temporary tables outlive the transaction, and in transaction pooling the server connection goes to another client after it")
		}
	case *pg_query.UpdateStmt:
		return writesSettings(n.GetRelation())
	case *pg_query.InsertStmt:
		return writesSettings(n.GetRelation())
	case *pg_query.DeleteStmt:
		return writesSettings(n.GetRelation())
	case *pg_query.MergeStmt:
		return writesSettings(n.GetRelation())
	case *pg_query.VariableSetStmt:
		// Nested in ALTER FUNCTION/ROLE/DATABASE ... SET or CREATE FUNCTION
		// ... SET: the setting would hold whenever that runs. (A RESET
		// gives no value; at the top level checkSet judges it.)
		if n.GetKind() != pg_query.VariableSetKind_VAR_RESET && strings.HasPrefix(strings.ToLower(n.GetName()), g.prefix) {
			return refuse(RuleTenantSetting, "settings under %q are reserved for the tenant context set by the proxy", g.prefix)
		}
	case *pg_query.CreatePolicyStmt, *pg_query.AlterPolicyStmt:
		return refuse(RuleRowSecurity, "row-level security policies are managed by the operator (`tenantgate pg migrate`), not through the proxy")
	case *pg_query.DropStmt:
		if n.GetRemoveType() == pg_query.ObjectType_OBJECT_POLICY {
			return refuse(RuleRowSecurity, "row-level security policies are managed by the operator (`tenantgate pg migrate`), not through the proxy")
		}
	case *pg_query.AlterTableCmd:
		switch n.GetSubtype() {
		case pg_query.AlterTableType_AT_DisableRowSecurity, pg_query.AlterTableType_AT_NoForceRowSecurity,
			pg_query.AlterTableType_AT_ChangeOwner:
			return refuse(RuleRowSecurity, "turning row-level security off or changing a table's owner is not allowed through the proxy")
		}
	case *pg_query.ExecuteStmt:
		// The proxy's own statements (tenantgate_set runs set_config) are
		// prepared on the server connection: SQL EXECUTE must not reach them.
		return reservedSQLName(n.GetName())
	case *pg_query.FetchStmt:
		return reservedSQLName(n.GetPortalname())
	case *pg_query.ClosePortalStmt:
		return reservedSQLName(n.GetPortalname())
	case *pg_query.DeclareCursorStmt:
		return reservedSQLName(n.GetPortalname())
	case *pg_query.IntoClause:
		if !g.opts.AllowDDL {
			return refuse(RuleDDL, "SELECT INTO / CREATE TABLE AS creates a table; schema changes are not allowed through the proxy (postgres.ddl: refuse)")
		}
	}
	return nil
}

// reservedSQLName refuses a statement or portal name of the proxy's own in
// SQL (EXECUTE, FETCH, CLOSE, DECLARE).
func reservedSQLName(name string) *Verdict {
	if strings.HasPrefix(strings.ToLower(name), reservedPrefix) {
		return refuse(RuleReservedName, "prepared statement and portal names starting with %q are reserved for the proxy", reservedPrefix)
	}
	return nil
}

// writesSettings refuses writes to pg_settings, whose update rule calls
// set_config.
func writesSettings(rel *pg_query.RangeVar) *Verdict {
	if rel != nil && strings.EqualFold(rel.GetRelname(), "pg_settings") {
		return refuse(RuleSetConfig, "writing pg_settings changes settings (it calls set_config)")
	}
	return nil
}

// activityRelations show the statement texts of every session of the
// proxy's role, that is of every tenant: the literals in them are tenants'
// data. pg_prepared_statements belongs here too: in transaction pooling a
// server connection holds the statements other tenants prepared on it.
var activityRelations = map[string]bool{"pg_stat_activity": true, "pg_stat_statements": true, "pg_prepared_statements": true}

// deniedFunctions maps a function name (without schema) to its rule.
var deniedFunctions = map[string]string{
	"set_config":                    RuleSetConfig,
	"query_to_xml":                  RuleDynamicSQL,
	"query_to_xmlschema":            RuleDynamicSQL,
	"query_to_xml_and_xmlschema":    RuleDynamicSQL,
	"ts_stat":                       RuleDynamicSQL,
	"ts_rewrite":                    RuleDynamicSQL,
	"table_to_xml":                  RuleDynamicSQL, // selects from a relation named by a value,
	"table_to_xmlschema":            RuleDynamicSQL, // which the guard cannot judge
	"table_to_xml_and_xmlschema":    RuleDynamicSQL,
	"schema_to_xml":                 RuleDynamicSQL,
	"schema_to_xmlschema":           RuleDynamicSQL,
	"schema_to_xml_and_xmlschema":   RuleDynamicSQL,
	"database_to_xml":               RuleDynamicSQL,
	"database_to_xmlschema":         RuleDynamicSQL,
	"database_to_xml_and_xmlschema": RuleDynamicSQL,
	"pg_stat_get_activity":          RuleActivity,
	"pg_prepared_statement":         RuleActivity,
	"pg_stat_get_backend_activity":  RuleActivity,
	"pg_stat_statements":            RuleActivity,
	"loread":                        RuleLargeObject,
	"lowrite":                       RuleLargeObject,
	"pg_read_file":                  RuleServerFiles,
	"pg_read_binary_file":           RuleServerFiles,
	"pg_stat_file":                  RuleServerFiles,
	"pg_file_write":                 RuleServerFiles,
	"pg_file_rename":                RuleServerFiles,
	"pg_file_unlink":                RuleServerFiles,
	"pg_file_sync":                  RuleServerFiles,
	"pg_logdir_ls":                  RuleServerFiles,
	"pg_terminate_backend":          RuleServerAdmin,
	"pg_cancel_backend":             RuleServerAdmin,
	"pg_reload_conf":                RuleServerAdmin,
	"pg_rotate_logfile":             RuleServerAdmin,
	"pg_promote":                    RuleServerAdmin,
	"pg_notify":                     RuleNotify,
	"pg_advisory_lock":              RuleSessionState,
	"pg_advisory_lock_shared":       RuleSessionState,
	"pg_try_advisory_lock":          RuleSessionState,
	"pg_try_advisory_lock_shared":   RuleSessionState,
	"pg_import_system_collations":   RuleServerAdmin,
	"pg_replication_origin_create":  RuleServerAdmin,
}

// deniedPrefixes are function name prefixes refused whole.
var deniedPrefixes = []struct{ prefix, rule string }{
	{"lo_", RuleLargeObject},
	{"dblink", RuleServerAdmin},
	{"pg_ls_", RuleServerFiles},
}

func (g *Guard) checkFunc(f *pg_query.FuncCall) *Verdict {
	parts := f.GetFuncname()
	if len(parts) == 0 {
		return nil
	}
	// Refused whatever the schema: pg_catalog.set_config and a look-alike
	// in another schema are both refused.
	name := strings.ToLower(parts[len(parts)-1].GetString_().GetSval())
	rule, ok := deniedFunctions[name]
	if !ok {
		for _, p := range deniedPrefixes {
			if strings.HasPrefix(name, p.prefix) {
				rule, ok = p.rule, true
				break
			}
		}
	}
	if !ok {
		return nil
	}
	if rule == RuleSessionState && !g.opts.TransactionMode {
		return nil // session-level advisory locks are fine in session pooling
	}
	return refuse(rule, "the function %s is not allowed through the proxy", name)
}
