package pg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tenantgate/tenantgate/policy"
)

// MigrateOptions configure PlanMigration.
type MigrateOptions struct {
	Table          string // [schema.]table, as to_regclass reads it
	TenantColumn   string // default tenant_id
	TenantSetting  string // default app.tenant_id
	PolicyName     string // default tenant_isolation
	ExistingTenant string // the tenant of rows already in the table; needed when it has rows and no tenant column
	// Signer, in hardened mode: the policy and the column default use
	// tenantgate_rls.current_tenant(), created by the plan; the key is not in
	// the plan (it would be printed) but stored by ApplyMigration.
	Signer *TenantSigner
}

func (o *MigrateOptions) setDefaults() {
	if o.TenantColumn == "" {
		o.TenantColumn = "tenant_id"
	}
	if o.TenantSetting == "" {
		o.TenantSetting = "app.tenant_id"
	}
	if o.PolicyName == "" {
		o.PolicyName = "tenant_isolation"
	}
}

// PlanMigration returns the statements that make an existing single-tenant
// table tenant-scoped (the logic of `tenantgate pg migrate`): the tenant
// column with its default from the tenant setting and NOT NULL, primary key
// and unique constraints rebuilt with the tenant column first, Row-Level
// Security enabled and forced, and one policy for reads and writes that
// reads the setting in a scalar subquery (evaluated once per statement);
// in hardened mode (opts.Signer) the function that checks the signature
// instead, created first.
// Planning again after applying yields only idempotent statements. conn
// must be the table's owner (or a superuser).
func PlanMigration(ctx context.Context, conn *pgx.Conn, opts MigrateOptions) ([]string, error) {
	opts.setDefaults()
	var oid uint32
	var schema, name string
	err := conn.QueryRow(ctx, `SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')`, opts.Table).Scan(&oid, &schema, &name)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("table %q does not exist", opts.Table)
	}
	if err != nil {
		return nil, err
	}
	table := pgx.Identifier{schema, name}.Sanitize()
	col := pgx.Identifier{opts.TenantColumn}.Sanitize()
	current := fmt.Sprintf("current_setting(%s)", quoteLiteral(opts.TenantSetting))
	var out []string
	if opts.Signer != nil {
		current = CurrentTenantFunc
		out = append(out, opts.Signer.SignatureSchemaStatements(opts.TenantSetting)...)
	}

	var hasColumn bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
		WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped)`, oid, opts.TenantColumn).Scan(&hasColumn); err != nil {
		return nil, err
	}
	if !hasColumn {
		var hasRows bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+table+")").Scan(&hasRows); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s text", table, col))
		if hasRows {
			if !policy.ValidTenantID(opts.ExistingTenant) {
				return nil, fmt.Errorf("table %s has rows: name the tenant they belong to (--tenant)", table)
			}
			out = append(out, fmt.Sprintf("UPDATE %s SET %s = %s", table, col, quoteLiteral(opts.ExistingTenant)))
		}
	}
	out = append(out,
		fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", table, col, current),
		fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", table, col))

	rows, err := conn.Query(ctx, `SELECT con.conname, con.contype::text,
			array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
				JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i)
		FROM pg_catalog.pg_constraint con WHERE con.conrelid = $1 AND con.contype IN ('p', 'u') ORDER BY con.contype, con.conname`, oid)
	if err != nil {
		return nil, err
	}
	type constraint struct {
		name, kind string
		cols       []string
	}
	cons, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (constraint, error) {
		var c constraint
		err := r.Scan(&c.name, &c.kind, &c.cols)
		return c, err
	})
	if err != nil {
		return nil, err
	}
	for _, c := range cons {
		if len(c.cols) > 0 && c.cols[0] == opts.TenantColumn {
			continue
		}
		cols := []string{col}
		for _, name := range c.cols {
			if name != opts.TenantColumn {
				cols = append(cols, pgx.Identifier{name}.Sanitize())
			}
		}
		kind := "UNIQUE"
		if c.kind == "p" {
			kind = "PRIMARY KEY"
		}
		out = append(out, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s %s (%s)", table,
			pgx.Identifier{c.name}.Sanitize(), pgx.Identifier{c.name}.Sanitize(), kind, strings.Join(cols, ", ")))
	}

	check := fmt.Sprintf("(%s = (SELECT current_setting(%s, true)))", col, quoteLiteral(opts.TenantSetting))
	if opts.Signer != nil {
		check = fmt.Sprintf("(%s = (SELECT %s))", col, CurrentTenantFunc)
	}
	pol := pgx.Identifier{opts.PolicyName}.Sanitize()
	out = append(out,
		fmt.Sprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY", table),
		fmt.Sprintf("ALTER TABLE %s FORCE ROW LEVEL SECURITY", table),
		fmt.Sprintf("DROP POLICY IF EXISTS %s ON %s", pol, table),
		fmt.Sprintf("CREATE POLICY %s ON %s USING %s WITH CHECK %s", pol, table, check, check))
	return slices.Clip(out), nil
}

// ApplyMigration runs statements in one transaction; with a signer
// (hardened mode), it stores the signer's key in the same transaction.
func ApplyMigration(ctx context.Context, conn *pgx.Conn, statements []string, signer *TenantSigner) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, s := range statements {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		if signer != nil {
			if err := signer.installSigningKey(ctx, tx); err != nil {
				return fmt.Errorf("storing the signing key: %w", err)
			}
		}
		return nil
	})
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
