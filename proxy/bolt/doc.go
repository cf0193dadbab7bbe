// Package bolt is the Neo4j engine: a Bolt proxy that makes every Cypher
// statement of a tenant's session reach only that tenant's nodes.
//
// The job. An app points the official Neo4j driver at the proxy (bolt:// or
// neo4j://) and authenticates with BearerAuth(jwt), or basic auth with the
// JWT as password. The proxy negotiates a Bolt version (5.0-5.8 or 4.4) that
// both the client and the upstream speak, verifies the token with
// proxy.Session.Authenticate, and logs in upstream with its own
// credentials. Each RUN is decoded and its Cypher rewritten by package
// cypher so that every node pattern carries the tenant's label; RUN and
// BEGIN may not name another database nor impersonate a user. Everything
// else (PULL, DISCARD, COMMIT, ROLLBACK, RESET, TELEMETRY) is relayed as
// bytes. Replies are relayed in order; a RECORD is decoded only when the
// tenant label's bytes occur in it, to remove the label from its nodes.
// ROUTE replies list only the proxy's advertised address, so a neo4j://
// driver never learns the upstream's.
//
// Modes. In label mode (the default) one database is shared and the
// rewriter is the isolation. In database mode each tenant has its own
// database, named by a template with an injective encoding of the tenant
// id (naming.go); the proxy sets db on every BEGIN, RUN and ROUTE, and
// statements are parsed, checked (USE, LOAD CSV, administration commands,
// procedures outside the allowlist are still refused) and printed, but not
// labelled, and results are relayed untouched. With AllowSchema, index and
// constraint commands pass a strict token-level check instead of being
// refused.
//
// Threat model. The client is untrusted: until it logs in, only HELLO and
// LOGON are accepted, and a refused login ends the connection. After that,
// the Cypher rewriter is the isolation; there is no row-level security
// behind it in Neo4j. Statements it cannot parse, or cannot scope (LOAD CSV,
// USE, administration commands, procedures outside the allowlist, dynamic
// labels, any use of the reserved label prefix), are refused with a Neo4j
// FAILURE and never forwarded. A refusal puts the client in Bolt's FAILED
// state, emulated by the proxy, so that pipelined messages after it are
// IGNORED rather than run. Memory per message is bounded by the maximum
// message size; PackStream decoding is bounded in depth. When the proxy
// drains, a session is closed at its first idle point (no reply
// outstanding, no transaction or result open). Where the edition allows, a
// database per tenant (database mode) is the stronger design (see
// docs/neo4j.md).
package bolt
