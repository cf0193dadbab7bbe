package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantgate/tenantgate/internal/sidecar"
	"github.com/tenantgate/tenantgate/proxy/pg"
)

const pgUsage = `Usage:
  tenantgate pg audit --config FILE [--schema public]...
  tenantgate pg migrate --config FILE --table T [--url OWNER_URL] [--tenant ID] [--apply]
`

// errFindings makes audit exit 1 without printing an error line: the
// findings are the output.
var errFindings = errors.New("the database does not enforce tenant isolation")

func cmdPG(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, pgUsage)
		return errors.New("pg: audit or migrate?")
	}
	switch args[0] {
	case "audit":
		return cmdPGAudit(args[1:], stdout, stderr)
	case "migrate":
		return cmdPGMigrate(args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, pgUsage)
	return fmt.Errorf("pg: unknown command %q", args[0])
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func cmdPGAudit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pg audit", stderr)
	path := fs.String("config", "", "configuration file; the audit connects with postgres.upstream")
	var schemas stringList
	fs.Var(&schemas, "schema", "schema to audit (repeatable; default public)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if cfg.Postgres == nil {
		return errors.New("pg audit: the config has no postgres section")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, string(cfg.Postgres.Upstream))
	if err != nil {
		return fmt.Errorf("pg audit: connect with postgres.upstream: %w", err)
	}
	defer conn.Close(context.Background())
	signer, err := sidecar.PostgresSigner(cfg.Postgres)
	if err != nil {
		return fmt.Errorf("pg audit: %w", err)
	}
	posture, err := pg.CheckPosture(ctx, conn, pg.PostureOptions{Schemas: schemas, TenantSetting: cfg.Postgres.TenantSetting, Signer: signer})
	if err != nil {
		return fmt.Errorf("pg audit: %w", err)
	}
	fmt.Fprintf(stdout, "role %s\n", posture.Role)
	for _, f := range posture.Findings {
		fmt.Fprintln(stdout, f.String())
	}
	if posture.Critical() {
		return errFindings
	}
	fmt.Fprintln(stdout, "ok: no critical findings")
	return nil
}

func cmdPGMigrate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pg migrate", stderr)
	path := fs.String("config", "", "configuration file (postgres.tenant_setting; postgres.upstream unless --url)")
	table := fs.String("table", "", "[schema.]table to make tenant-scoped (required)")
	url := fs.String("url", "", "connection URL of the table's owner (default postgres.upstream, which should own nothing)")
	tenant := fs.String("tenant", "", "tenant of the rows already in the table")
	apply := fs.Bool("apply", false, "run the statements instead of printing them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *table == "" {
		return errors.New("pg migrate: --table is required")
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if cfg.Postgres == nil {
		return errors.New("pg migrate: the config has no postgres section")
	}
	connURL := *url
	if connURL == "" {
		connURL = string(cfg.Postgres.Upstream)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return fmt.Errorf("pg migrate: connect: %w", err)
	}
	defer conn.Close(context.Background())
	signer, err := sidecar.PostgresSigner(cfg.Postgres)
	if err != nil {
		return fmt.Errorf("pg migrate: %w", err)
	}
	stmts, err := pg.PlanMigration(ctx, conn, pg.MigrateOptions{
		Table: *table, TenantSetting: cfg.Postgres.TenantSetting, ExistingTenant: *tenant, Signer: signer,
	})
	if err != nil {
		return fmt.Errorf("pg migrate: %w", err)
	}
	for _, s := range stmts {
		fmt.Fprintf(stdout, "%s;\n", s)
	}
	if signer != nil {
		fmt.Fprintln(stdout, "-- and, with --apply, postgres.tenant_signature.key into tenantgate_rls.signing_key (not printed)")
	}
	if !*apply {
		return nil
	}
	if err := pg.ApplyMigration(ctx, conn, stmts, signer); err != nil {
		return fmt.Errorf("pg migrate: apply: %w", err)
	}
	fmt.Fprintf(stderr, "applied %d statements to %s\n", len(stmts), *table)
	return nil
}
