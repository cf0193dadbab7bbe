package pg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Severity of a posture finding. Critical findings mean a tenant can read or
// write another tenant's rows; `tenantgate run` refuses to start on them
// unless postgres.allow_unsafe is set.
type Severity string

// Severities.
const (
	Critical Severity = "critical"
	Warning  Severity = "warning"
	Info     Severity = "info"
)

// Finding is one result of CheckPosture.
type Finding struct {
	Severity Severity
	Object   string // schema.name
	Message  string
}

func (f Finding) String() string { return fmt.Sprintf("%-8s %s: %s", f.Severity, f.Object, f.Message) }

// PostureOptions configure CheckPosture.
type PostureOptions struct {
	Schemas       []string // default public
	TenantColumn  string   // default tenant_id
	TenantSetting string   // default app.tenant_id
	// Signer, in hardened mode: policies must test tenantgate_rls.current_tenant(),
	// which must exist, check signatures with the signer's key, and keep
	// the key out of the role's reach.
	Signer *TenantSigner
}

// Posture is the report of CheckPosture.
type Posture struct {
	Role     string
	Findings []Finding
}

// Critical reports whether any finding is critical.
func (p *Posture) Critical() bool {
	return slices.ContainsFunc(p.Findings, func(f Finding) bool { return f.Severity == Critical })
}

type postureTable struct {
	oid               uint32
	name              string
	rls, force, owned bool
	hasTenant         bool
}

// CheckPosture checks, connected with the proxy's upstream credentials, that
// the database enforces what the proxy relies on (the logic of `tenantgate pg
// audit`): the role is no superuser and has no BYPASSRLS; every table with
// the tenant column has RLS enabled, forced when the role owns it, and a
// policy whose USING and WITH CHECK read the tenant setting, and no
// permissive policy that does not; unique keys include the tenant column;
// no view or SECURITY DEFINER function reads tenant tables with its owner's
// rights. Tables without the tenant column are listed as shared.
func CheckPosture(ctx context.Context, conn *pgx.Conn, opts PostureOptions) (*Posture, error) {
	if len(opts.Schemas) == 0 {
		opts.Schemas = []string{"public"}
	}
	if opts.TenantColumn == "" {
		opts.TenantColumn = "tenant_id"
	}
	if opts.TenantSetting == "" {
		opts.TenantSetting = "app.tenant_id"
	}
	p := &Posture{}
	add := func(s Severity, object, format string, args ...any) {
		p.Findings = append(p.Findings, Finding{Severity: s, Object: object, Message: fmt.Sprintf(format, args...)})
	}

	var super, bypass bool
	if err := conn.QueryRow(ctx, "SELECT current_user::text, rolsuper, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = current_user").
		Scan(&p.Role, &super, &bypass); err != nil {
		return nil, err
	}
	if super {
		add(Critical, "role "+p.Role, "is a superuser: Row-Level Security does not apply to it")
	}
	if bypass {
		add(Critical, "role "+p.Role, "has BYPASSRLS: Row-Level Security does not apply to it")
	}
	// The guard refuses COPY to and from server files and programs; these
	// roles would let the server run them were one to slip past it.
	rows, err := conn.Query(ctx, `SELECT r.rolname::text FROM pg_catalog.pg_roles r
		WHERE r.rolname IN ('pg_read_server_files', 'pg_write_server_files', 'pg_execute_server_program')
			AND pg_catalog.pg_has_role(current_user, r.oid, 'USAGE') ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	serverRoles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for _, r := range serverRoles {
		add(Critical, "role "+p.Role, "is a member of %s: it can read or write the server's files or run programs there", r)
	}

	rows, err = conn.Query(ctx, `SELECT c.oid, n.nspname || '.' || c.relname, c.relrowsecurity, c.relforcerowsecurity,
			pg_catalog.pg_has_role(c.relowner, 'USAGE'),
			EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1) ORDER BY 2`, opts.Schemas, opts.TenantColumn)
	if err != nil {
		return nil, err
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (postureTable, error) {
		var t postureTable
		err := r.Scan(&t.oid, &t.name, &t.rls, &t.force, &t.owned, &t.hasTenant)
		return t, err
	})
	if err != nil {
		return nil, err
	}
	var tenantOIDs []uint32
	var tenantNames []string
	for _, t := range tables {
		if !t.hasTenant {
			add(Info, t.name, "shared table (no %s column): every tenant sees all of its rows", opts.TenantColumn)
			continue
		}
		tenantOIDs = append(tenantOIDs, t.oid)
		tenantNames = append(tenantNames, t.name[strings.IndexByte(t.name, '.')+1:])
		if err := checkTenantTable(ctx, conn, opts, t, add); err != nil {
			return nil, err
		}
	}
	if opts.Signer != nil {
		if err := checkSignature(ctx, conn, opts, add); err != nil {
			return nil, err
		}
	}
	if len(tenantOIDs) == 0 {
		return p, nil
	}
	if err := checkReaders(ctx, conn, opts, tenantOIDs, tenantNames, add); err != nil {
		return nil, err
	}
	return p, nil
}

func checkTenantTable(ctx context.Context, conn *pgx.Conn, opts PostureOptions, t postureTable, add func(Severity, string, string, ...any)) error {
	switch {
	case !t.rls:
		add(Critical, t.name, "Row-Level Security is not enabled")
	case t.owned && !t.force:
		add(Critical, t.name, "the role owns the table and RLS is not forced: its policies do not apply to the role")
	case t.owned:
		add(Warning, t.name, "the role owns the table (RLS is forced, but an owner can change that)")
	}

	type policy struct {
		name, cmd, using, check string
		permissive              bool
	}
	var policies []policy
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// pg_get_expr leaves out the schema of names visible on the search
		// path: with pg_catalog alone, tenantgate_rls.current_tenant() prints
		// qualified (whatever the role's search path), and so does a
		// look-alike in another schema, which then does not match.
		if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT polname::text, polcmd::text, polpermissive,
				coalesce(pg_catalog.pg_get_expr(polqual, polrelid), ''), coalesce(pg_catalog.pg_get_expr(polwithcheck, polrelid), '')
			FROM pg_catalog.pg_policy WHERE polrelid = $1 ORDER BY polname`, t.oid)
		if err != nil {
			return err
		}
		policies, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (policy, error) {
			var p policy
			err := r.Scan(&p.name, &p.cmd, &p.permissive, &p.using, &p.check)
			return p, err
		})
		return err
	})
	if err != nil {
		return err
	}
	scoped := false
	readsSetting := func(expr string) bool { return strings.Contains(expr, "'"+opts.TenantSetting+"'") }
	if opts.Signer != nil {
		readsSetting = func(expr string) bool { return strings.Contains(expr, CurrentTenantFunc) }
	}
	for _, p := range policies {
		if !p.permissive {
			continue // restrictive policies only narrow
		}
		if !readsSetting(p.using) && (p.cmd == "*" || p.cmd == "r" || p.cmd == "w" || p.cmd == "d") ||
			p.check != "" && !readsSetting(p.check) {
			add(Critical, t.name, "permissive policy %q does not test %s: permissive policies are OR-ed, so it opens the table", p.name, tested(opts))
			continue
		}
		if p.cmd == "*" && readsSetting(p.using) && (p.check == "" || readsSetting(p.check)) {
			scoped = true
		}
	}
	if !scoped {
		add(Critical, t.name, "no policy FOR ALL whose USING and WITH CHECK test %s", tested(opts))
	}

	rows, err := conn.Query(ctx, `SELECT ci.relname::text,
			array(SELECT a.attname::text FROM unnest(i.indkey) k(n) JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n)
		FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ci ON ci.oid = i.indexrelid
		WHERE i.indrelid = $1 AND i.indisunique ORDER BY 1`, t.oid)
	if err != nil {
		return err
	}
	var index string
	var cols []string
	_, err = pgx.ForEachRow(rows, []any{&index, &cols}, func() error {
		if !slices.Contains(cols, opts.TenantColumn) {
			add(Warning, t.name, "unique index %q (%s) does not include %s: two tenants' rows collide, and each can learn the other's keys",
				index, strings.Join(cols, ", "), opts.TenantColumn)
		}
		return nil
	})
	return err
}

// tested is what tenant policies must test.
func tested(opts PostureOptions) string {
	if opts.Signer != nil {
		return CurrentTenantFunc + " (hardened mode: the tenant setting alone can be forged)"
	}
	return opts.TenantSetting
}

// checkSignature checks hardened mode's function and key: the function
// exists, runs with its owner's rights, is not the role's to replace, the
// role cannot read the key, and the key is the signer's.
func checkSignature(ctx context.Context, conn *pgx.Conn, opts PostureOptions, add func(Severity, string, string, ...any)) error {
	const object = "function " + CurrentTenantFunc
	var secdef, owned, readsKey bool
	err := conn.QueryRow(ctx, `SELECT p.prosecdef, pg_catalog.pg_has_role(p.proowner, 'USAGE'),
			coalesce(pg_catalog.has_table_privilege(to_regclass($1), 'SELECT'), false)
		FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = $2 AND p.proname = 'current_tenant' AND p.pronargs = 0`, signatureKeyTable, signatureSchema).Scan(&secdef, &owned, &readsKey)
	if errors.Is(err, pgx.ErrNoRows) {
		add(Critical, object, "does not exist: create it with `tenantgate pg migrate --apply` and postgres.tenant_signature configured")
		return nil
	}
	if err != nil {
		return err
	}
	if !secdef {
		add(Critical, object, "is not SECURITY DEFINER: it cannot read the key without giving the role the key")
	}
	if owned {
		add(Critical, object, "belongs to the role (or a role it is a member of), which could replace it")
	}
	if readsKey {
		add(Critical, signatureKeyTable, "is readable by the role: whoever gets a statement past the guard can sign any tenant")
	}
	const probe = "tenantgate-posture-probe"
	var got *string
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_catalog.set_config($1, $2, true), pg_catalog.set_config($3, $4, true)",
			opts.TenantSetting, probe, opts.Signer.Setting(), opts.Signer.Sign(probe)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT "+CurrentTenantFunc).Scan(&got)
	})
	if err != nil {
		add(Critical, object, "cannot be called by the role: %v", err)
		return nil
	}
	if got == nil || *got != probe {
		add(Critical, object, "does not accept the proxy's signatures: the key in %s is not postgres.tenant_signature.key (install it with `tenantgate pg migrate --apply`), so every statement would see no rows", signatureKeyTable)
	}
	return nil
}

// checkReaders finds views and SECURITY DEFINER functions that read tenant
// tables with their owner's rights.
func checkReaders(ctx context.Context, conn *pgx.Conn, opts PostureOptions, oids []uint32, names []string, add func(Severity, string, string, ...any)) error {
	rows, err := conn.Query(ctx, `SELECT DISTINCT n.nspname || '.' || v.relname, v.relkind::text,
			coalesce('security_invoker=true' = ANY(v.reloptions) OR 'security_invoker=on' = ANY(v.reloptions), false)
		FROM pg_catalog.pg_depend d
		JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
		JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
		JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
		WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = ANY($1) AND v.oid <> d.refobjid
			AND v.relkind IN ('v', 'm') ORDER BY 1`, oids)
	if err != nil {
		return err
	}
	var name, kind string
	var invoker bool
	_, err = pgx.ForEachRow(rows, []any{&name, &kind, &invoker}, func() error {
		switch {
		case kind == "m":
			add(Critical, name, "materialized view over tenant tables: it holds every tenant's rows, and RLS does not apply to it")
		case !invoker:
			add(Critical, name, "view over tenant tables without security_invoker: it reads them with its owner's rights")
		}
		return nil
	})
	if err != nil {
		return err
	}

	rows, err = conn.Query(ctx, `SELECT n.nspname || '.' || p.proname, lower(coalesce(p.prosrc, ''))
		FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
		WHERE p.prosecdef AND n.nspname = ANY($1) ORDER BY 1`, opts.Schemas)
	if err != nil {
		return err
	}
	var body string
	_, err = pgx.ForEachRow(rows, []any{&name, &body}, func() error {
		for _, table := range names {
			if strings.Contains(body, strings.ToLower(table)) {
				add(Critical, name, "SECURITY DEFINER function mentions tenant table %s: it may read it with its owner's rights", table)
				return nil
			}
		}
		return nil
	})
	return err
}

// CheckPosture runs CheckPosture with the engine's upstream credentials and
// tenant setting, on the public schema.
func (e *Engine) CheckPosture(ctx context.Context) (*Posture, error) {
	conn, err := pgx.ConnectConfig(ctx, e.connConfig())
	if err != nil {
		return nil, fmt.Errorf("connect to the upstream: %w", err)
	}
	defer conn.Close(context.Background())
	return CheckPosture(ctx, conn, PostureOptions{TenantSetting: e.opts.TenantSetting, Signer: e.opts.Signer})
}

// UnsafeError describes the critical findings that stop the engine from
// starting.
func (p *Posture) UnsafeError() error {
	var lines []string
	for _, f := range p.Findings {
		if f.Severity == Critical {
			lines = append(lines, f.Object+": "+f.Message)
		}
	}
	return fmt.Errorf("the database does not enforce tenant isolation (see `tenantgate pg audit`; postgres.allow_unsafe: true starts anyway): %s",
		strings.Join(lines, "; "))
}
