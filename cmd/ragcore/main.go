// Command ragcore is the CLI and HTTP server of the ragcore RAG engine.
//
//	ragcore ingest PATH...                 ingest text/markdown files and directories
//	ragcore query "QUESTION" [--mode M] [--json]
//	ragcore delete DOC_ID
//	ragcore status                         list documents and their pipeline state
//	ragcore schema [--vector auto|array|pgvector] [--apply]
//	ragcore serve --listen ADDR            HTTP API (see package ragcore/httpapi)
//
// Datastores come from flags or the environment: RAGCORE_POSTGRES,
// RAGCORE_REDIS, RAGCORE_MONGO, RAGCORE_NEO4J (optional; without it the
// graph lives in PostgreSQL), and one credential, --credential or
// RAGCORE_CREDENTIAL, used as the password of every store whose address
// has none. An OpenAI-compatible endpoint (RAGCORE_LLM_URL, ...) is
// optional; without it embedding and extraction are local and queries
// return the retrieved context instead of an answer.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tenantgate/tenantgate/ragcore"
	"github.com/tenantgate/tenantgate/ragcore/chunk"
	"github.com/tenantgate/tenantgate/ragcore/embed"
	"github.com/tenantgate/tenantgate/ragcore/httpapi"
	"github.com/tenantgate/tenantgate/ragcore/store/vector"
)

const usage = `usage: ragcore COMMAND [flags]

commands:
  ingest PATH...          ingest .md/.markdown/.txt files (directories recursively)
  query "QUESTION"        --mode naive|local|global|hybrid (default hybrid), --json
  delete DOC_ID           remove a document and everything only it supported
  status                  list documents
  schema                  print the PostgreSQL schema (--vector, --dims, --apply)
  serve                   HTTP API (--listen, --max-engines)

run "ragcore COMMAND -h" for the flags of a command
`

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmds := map[string]func(context.Context, []string) error{
		"ingest": cmdIngest, "query": cmdQuery, "delete": cmdDelete,
		"status": cmdStatus, "schema": cmdSchema, "serve": cmdServe,
	}
	run, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "ragcore: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err := run(ctx, os.Args[2:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "ragcore:", err)
		}
		os.Exit(1)
	}
}

// Where commands write; tests replace them.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

// storeFlags registers the datastore and model flags on fs.
func storeFlags(fs *flag.FlagSet) *ragcore.Settings {
	s := &ragcore.Settings{}
	fs.StringVar(&s.Postgres, "postgres", env("RAGCORE_POSTGRES", ""), "PostgreSQL URL (RAGCORE_POSTGRES)")
	fs.StringVar(&s.Redis, "redis", env("RAGCORE_REDIS", ""), "Redis URL (RAGCORE_REDIS)")
	fs.StringVar(&s.Mongo, "mongo", env("RAGCORE_MONGO", ""), "MongoDB URL; its path names the database (RAGCORE_MONGO)")
	fs.StringVar(&s.Neo4j, "neo4j", env("RAGCORE_NEO4J", ""), "Neo4j URL; empty keeps the graph in PostgreSQL (RAGCORE_NEO4J)")
	fs.StringVar(&s.Credential, "credential", env("RAGCORE_CREDENTIAL", ""), "password for every store whose URL has none (RAGCORE_CREDENTIAL)")
	fs.StringVar(&s.MongoUser, "mongo-user", env("RAGCORE_MONGO_USER", "ragcore"), "user name sent with the credential over MongoDB PLAIN")
	fs.StringVar(&s.KeyPrefix, "key-prefix", env("RAGCORE_KEY_PREFIX", "ragcore:"), "Redis key prefix")
	fs.StringVar(&s.LLM.BaseURL, "llm-url", env("RAGCORE_LLM_URL", ""), "OpenAI-compatible API base URL, e.g. https://api.openai.com/v1 (RAGCORE_LLM_URL)")
	fs.StringVar(&s.LLM.APIKey, "llm-key", env("RAGCORE_LLM_KEY", ""), "API key of the endpoint (RAGCORE_LLM_KEY)")
	fs.StringVar(&s.LLM.ChatModel, "chat-model", env("RAGCORE_CHAT_MODEL", ""), "chat model for answers (RAGCORE_CHAT_MODEL)")
	fs.StringVar(&s.LLM.EmbedModel, "embed-model", env("RAGCORE_EMBED_MODEL", ""), "embedding model; empty: local hashed n-grams (RAGCORE_EMBED_MODEL)")
	fs.IntVar(&s.LLM.EmbedDims, "embed-dims", envInt("RAGCORE_EMBED_DIMS", embed.DefaultDims), "embedding size (pgvector column size)")
	fs.BoolVar(&s.LLM.Extract, "llm-extract", os.Getenv("RAGCORE_LLM_EXTRACT") == "true", "extract entities with the chat model instead of locally")
	fs.IntVar(&s.Chunk.Size, "chunk-size", chunk.DefaultOptions.Size, "tokens per chunk")
	fs.IntVar(&s.Chunk.Overlap, "chunk-overlap", chunk.DefaultOptions.Overlap, "tokens shared by consecutive chunks")
	fs.IntVar(&s.TopK, "top-k", 8, "items retrieved per query step")
	return s
}

// parse parses args, requiring exactly nArgs positional arguments (-1: at least one).
func parse(fs *flag.FlagSet, args []string, nArgs int, what string) error {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: ragcore %s %s\n", fs.Name(), what)
		fs.PrintDefaults()
	}
	// Flags may follow the arguments, as the usage lines show them (`query
	// "QUESTION" --mode naive`): the flag package stops at the first
	// argument, so parse again after each one. "--" ends the flags.
	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		next := fs.Args()
		if consumed := len(rest) - len(next); consumed > 0 && rest[consumed-1] == "--" {
			positional = append(positional, next...)
			break
		}
		if len(next) == 0 {
			break
		}
		positional = append(positional, next[0])
		rest = next[1:]
	}
	if err := fs.Parse(append([]string{"--"}, positional...)); err != nil { // leave them in fs.Args()
		return err
	}
	if (nArgs < 0 && fs.NArg() == 0) || (nArgs >= 0 && fs.NArg() != nArgs) {
		fs.Usage()
		return fmt.Errorf("%s: wrong arguments", fs.Name())
	}
	return nil
}

func open(ctx context.Context, s *ragcore.Settings) (*ragcore.Engine, error) {
	s.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	return ragcore.Open(ctx, *s)
}

func cmdIngest(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	s := storeFlags(fs)
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := parse(fs, args, -1, "PATH..."); err != nil {
		return err
	}
	files, err := ragcore.CollectFiles(fs.Args())
	if err != nil {
		return err
	}
	bar := newProgress(stderr, len(files))
	if !*quiet {
		s.Progress = bar.step
	}
	e, err := open(ctx, s)
	if err != nil {
		return err
	}
	defer e.Close()
	texts := make([]string, len(files))
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		texts[i] = string(b)
		if err := e.Queue(ctx, f, texts[i]); err != nil {
			return err
		}
	}
	failed := 0
	for i, f := range files {
		if !*quiet {
			bar.start(i, f)
		}
		res, err := e.Ingest(ctx, f, texts[i])
		bar.clear()
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(stdout, "failed     %s: %v\n", f, err)
		case res.Unchanged:
			fmt.Fprintf(stdout, "unchanged  %s  %s\n", res.DocID, f)
		default:
			fmt.Fprintf(stdout, "ingested   %s  %s  (%d chunks, %d entities, %d relations)\n", res.DocID, f, res.Chunks, res.Entities, res.Relations)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d documents failed", failed, len(files))
	}
	return nil
}

func cmdQuery(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	s := storeFlags(fs)
	modeName := fs.String("mode", "hybrid", "naive, local, global or hybrid")
	asJSON := fs.Bool("json", false, "print the full result as JSON")
	if err := parse(fs, args, 1, `"QUESTION"`); err != nil {
		return err
	}
	mode, err := ragcore.ParseMode(*modeName)
	if err != nil {
		return err
	}
	e, err := open(ctx, s)
	if err != nil {
		return err
	}
	defer e.Close()
	res, err := e.Query(ctx, fs.Arg(0), mode)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printResult(stdout, res)
	return nil
}

func printResult(w io.Writer, res ragcore.Result) {
	if res.Answer != "" {
		fmt.Fprintf(w, "%s\n\n", res.Answer)
	} else {
		fmt.Fprintf(w, "(no chat model configured: retrieved context, mode %s)\n\n%s\n", res.Mode, res.Context)
	}
	fmt.Fprintln(w, "Sources:")
	if len(res.Sources) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, src := range res.Sources {
		fmt.Fprintf(w, "  %s  %s\n", src.DocID, src.Name)
	}
}

func cmdDelete(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	s := storeFlags(fs)
	if err := parse(fs, args, 1, "DOC_ID"); err != nil {
		return err
	}
	e, err := open(ctx, s)
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.Delete(ctx, fs.Arg(0)); err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	fmt.Fprintln(stdout, "deleted", fs.Arg(0))
	return nil
}

func cmdStatus(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	s := storeFlags(fs)
	if err := parse(fs, args, 0, ""); err != nil {
		return err
	}
	e, err := open(ctx, s)
	if err != nil {
		return err
	}
	defer e.Close()
	docs, err := e.Documents(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tCHUNKS\tENTITIES\tRELATIONS\tUPDATED\tERROR")
	for _, d := range docs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", d.ID, d.Name, d.State, d.Chunks, d.Entities, d.Relations,
			d.UpdatedAt.Local().Format(time.DateTime), d.Error)
	}
	return tw.Flush()
}

func cmdSchema(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("schema", flag.ContinueOnError)
	s := storeFlags(fs)
	kindName := fs.String("vector", "auto", "embedding column: array (float4[]), pgvector, or auto (pgvector when the server offers it; array without --postgres)")
	apply := fs.Bool("apply", false, "run the statements on --postgres instead of printing them")
	if err := parse(fs, args, 0, "[--vector auto|array|pgvector] [--apply]"); err != nil {
		return err
	}
	kind := vector.Kind(*kindName)
	switch {
	case kind == "auto" && s.Postgres != "":
		k, err := ragcore.ChooseKind(ctx, *s)
		if err != nil {
			return err
		}
		kind = k
	case kind == "auto":
		kind = vector.Array
	case kind != vector.Array && kind != vector.PGVector:
		return fmt.Errorf("--vector %q: want auto, array or pgvector", *kindName)
	}
	stmts := ragcore.Schema(kind, s.LLM.EmbedDims)
	if *apply {
		if err := ragcore.ApplySchema(ctx, *s, stmts); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "schema applied (%d statements, %s embeddings)\n", len(stmts), kind)
		return nil
	}
	fmt.Fprintf(stdout, "-- ragcore PostgreSQL schema (%s embeddings, single tenant)\n", kind)
	for _, st := range stmts {
		fmt.Fprintf(stdout, "%s;\n\n", st)
	}
	return nil
}

func cmdServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	s := storeFlags(fs)
	listen := fs.String("listen", env("RAGCORE_LISTEN", "127.0.0.1:8080"), "HTTP listen address")
	maxEngines := fs.Int("max-engines", 16, "engines (one per credential) kept open")
	if err := parse(fs, args, 0, "[--listen ADDR]"); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	s.Logger = log
	base := *s
	openFor := func(ctx context.Context, cred string) (*ragcore.Engine, error) {
		settings := base
		settings.Credential = cred
		return ragcore.Open(ctx, settings)
	}
	api := httpapi.New(openFor, *maxEngines, base.Credential, log)
	defer api.Close()
	srv := &http.Server{Addr: *listen, Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("ragcore: serving HTTP", "listen", *listen)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
