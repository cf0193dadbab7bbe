// Command tenantgate is the multi-tenant isolation sidecar.
//
//	tenantgate run --config FILE           serve every configured listener
//	tenantgate token --tenant ID [--ttl 1h] [--config FILE]
//	                                        mint a development HS256 token
//	tenantgate check-config --config FILE  validate and print the config, secrets redacted
//	tenantgate pg audit --config FILE      check that PostgreSQL enforces tenant isolation
//	tenantgate pg migrate --config FILE --table T [--apply]
//	                                        make a single-tenant table tenant-scoped
//	tenantgate version                     print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/tenantgate/tenantgate/config"
	"github.com/tenantgate/tenantgate/internal/sidecar"
	"github.com/tenantgate/tenantgate/policy"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

const usage = `tenantgate: multi-tenant isolation for PostgreSQL, Redis, MongoDB and Neo4j

Usage:
  tenantgate run --config FILE
  tenantgate token --tenant ID [--ttl 1h] [--config FILE]
  tenantgate check-config --config FILE
  tenantgate pg audit --config FILE [--schema S]...
  tenantgate pg migrate --config FILE --table T [--url OWNER_URL] [--tenant ID] [--apply]
  tenantgate version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stderr)
	case "token":
		err = cmdToken(args[1:], stdout, stderr)
	case "check-config":
		err = cmdCheckConfig(args[1:], stdout, stderr)
	case "pg":
		err = cmdPG(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "tenantgate", buildVersion())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "tenantgate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if errors.Is(err, errFindings) {
			return 1
		}
		fmt.Fprintln(stderr, "tenantgate:", err)
		return 1
	}
	return 0
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tenantgate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return nil, errors.New("--config FILE is required")
	}
	return config.Load(path)
}

func cmdRun(args []string, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	sc, err := sidecar.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	log.Info("starting tenantgate", "version", buildVersion())
	return sc.Run(ctx)
}

func cmdToken(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token", stderr)
	tenant := fs.String("tenant", "", "tenant id (required)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	path := fs.String("config", "", "take jwt.secret and jwt.tenant_claim from this config (default: $TENANTGATE_JWT_SECRET)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tenant == "" {
		return errors.New("token: --tenant is required")
	}
	if *ttl <= 0 {
		return errors.New("token: --ttl must be positive")
	}
	secret, claim := os.Getenv("TENANTGATE_JWT_SECRET"), "tenant_id"
	if *path != "" {
		cfg, err := config.Load(*path)
		if err != nil {
			return err
		}
		secret, claim = string(cfg.JWT.Secret), cfg.JWT.TenantClaim
	}
	if secret == "" {
		return errors.New("token: no HS256 secret: set jwt.secret in --config or TENANTGATE_JWT_SECRET")
	}
	tok, err := policy.MintHS256([]byte(secret), claim, *tenant, *ttl, time.Now())
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check-config", stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	out, err := cfg.Marshal()
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
