// Package cypher parses Cypher into an AST, scopes it to a tenant's label
// and prints it back.
//
// The parser is hand-written (lexer, then recursive descent) and covers
// openCypher 9 and the Neo4j 5 syntax applications use: reading and
// updating clauses, UNION, CALL subqueries and procedures, EXISTS/COUNT/
// COLLECT subqueries, list and pattern comprehensions, label expressions,
// shortestPath and variable-length relationships. Anything else is an
// *Error: the caller refuses what was not understood. The printer writes
// canonical text (comments dropped, operands parenthesised, names quoted
// when needed) that parses back to the same AST.
//
// The Rewriter adds the tenant label to every node pattern that reads the
// graph (MATCH, OPTIONAL MATCH, pattern predicates and comprehensions,
// subqueries, shortestPath), bound or not, and to every node that CREATE or
// MERGE introduces. It tracks variable scope through WITH, UNWIND, CALL
// subqueries, FOREACH and UNION branches only to tell a reference to a bound
// node (left alone in CREATE/MERGE) from a new one; a mistake there can
// cost an error, never a wider match. It refuses any label with the
// reserved prefix, dynamic labels, LOAD CSV, USE, administration commands,
// procedures outside the allowlist, and namespaced functions other than the
// temporal, spatial and vector ones; labels(x) is rewritten to hide the
// tenant label, and unaliased RETURN items are aliased with their source
// text so that column names do not change.
//
// NewChecker makes a Rewriter without a label, for a database per tenant:
// the same parse, refusals (but no reserved prefix) and printing, and no
// labelling. The AllowSchema option lets index and constraint commands,
// which are outside the grammar, pass a strict token-level check
// (schema.go) instead of being refused.
package cypher
