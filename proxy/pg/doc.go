// Package pg is tenantgate's PostgreSQL engine: a wire-protocol proxy that
// makes an unchanged single-tenant application multi-tenant through
// PostgreSQL's own Row-Level Security.
//
// The job, per client connection (clientSession):
//
//   - Handshake (startup.go): SSLRequest is answered with TLS when the
//     listener has a certificate, else 'N'; GSSENCRequest with 'N'. The
//     StartupMessage's database must be a served one, its parameters must
//     be on an allowlist (options and replication are refused), and the
//     password is the client's JWT, verified by policy through
//     proxy.Session.Authenticate. The proxy issues its own BackendKeyData;
//     a CancelRequest carrying it cancels that client's statement only.
//   - Guard (guard.go): every simple Query string and every Parse is parsed
//     with PostgreSQL's own parser (pg_query_go) and judged on the parse
//     tree, walked generically so that no node can hide a function call.
//     Verdicts are cached by text with its numeric literals masked
//     (StatementCache, verdictkey.go). Refusals are answered
//     as PostgreSQL would answer an error, in order, and the session stays
//     usable.
//   - Pooling (pool.go, server.go): upstream connections belong to the
//     proxy (its own credentials) and are shared by all tenants. Before a
//     server connection runs anything of a client's, it holds the client's
//     tenant in the tenant setting (a parameterised set_config) and the
//     client's startup parameters; in transaction pooling the client holds
//     a server connection only from the first message of a transaction to
//     its ReadyForQuery. Named prepared statements are prepared on whichever
//     server connection the client gets. Messages are relayed as bytes; only
//     Parse, Bind and Describe of a named statement are re-encoded (their
//     statement name changes).
//
// Threat model. The client is the application, which may be compromised or
// carry injected SQL: it is trusted with nothing but its token. Its tenant is
// what the token says, applied by the proxy on the server connection; the
// guard refuses everything that could change that setting (SET, RESET,
// set_config anywhere, pg_settings writes, ALTER ROLE/DATABASE ... SET),
// switch roles, run code or SQL text the guard cannot see (DO, CREATE
// FUNCTION, dblink, query_to_xml), reach the server's files or other
// sessions (COPY PROGRAM, large objects, pg_read_file, pg_terminate_backend,
// LISTEN/NOTIFY), bypass RLS (TRUNCATE), change the schema (unless allowed),
// or leave state on a pooled connection for the next tenant (temporary
// tables, WITH HOLD cursors, session advisory locks). What the parser cannot
// parse is refused. The database is the second line: tables have RLS
// enabled and forced, and the proxy's role owns none of them and has no
// BYPASSRLS, so a statement that slips past the guard still sees only the
// tenant in the setting. Another tenant on the same server connection
// never sees the previous one's setting, prepared statement results,
// sequence state (DISCARD SEQUENCES on every tenant switch) or open
// transaction.
package pg
