package cypher

import (
	"slices"
	"strings"
)

// Index and constraint commands are outside the query grammar; with
// AllowSchema they are recognised at the token level instead, strictly:
//
//	CREATE [RANGE|TEXT|POINT|LOOKUP|FULLTEXT|VECTOR|BTREE] INDEX ...
//	CREATE CONSTRAINT ...
//	DROP INDEX ... | DROP CONSTRAINT ...
//	SHOW [kind words] INDEX|INDEXES|CONSTRAINT|CONSTRAINTS   (nothing after)
//
// One statement only; no clause keyword (MATCH, CALL, RETURN, ...) and no
// subquery anywhere in it, so nothing in it reads or writes the graph; no
// identifier with the reserved label prefix. The statement is forwarded
// as its tokens (comments dropped), so what Neo4j runs is what was
// checked. Everything else the parser calls administration (databases,
// users, roles, privileges, aliases, servers) stays refused.

var indexKinds = []string{"RANGE", "TEXT", "POINT", "LOOKUP", "FULLTEXT", "VECTOR", "BTREE"}

// showWords may stand between SHOW and INDEXES/CONSTRAINTS.
var showWords = append([]string{"ALL", "UNIQUE", "UNIQUENESS", "EXIST", "EXISTENCE", "NODE", "RELATIONSHIP", "REL", "KEY", "PROPERTY", "TYPE"}, indexKinds...)

// schemaForbidden are keywords that start a clause or a subquery: none has
// a place in an index or constraint command.
var schemaForbidden = []string{"MATCH", "OPTIONAL", "MERGE", "CALL", "RETURN", "WITH", "UNWIND", "LOAD", "USE", "DELETE", "DETACH", "FOREACH", "SET", "REMOVE", "UNION", "YIELD", "WHERE", "FINISH"}

// schemaCommand checks query as an index or constraint command and
// returns its canonical text, or adminErr (the parser's refusal) when it
// is not one.
func (r *Rewriter) schemaCommand(query string, adminErr error) (string, error) {
	toks, err := lex(query)
	if err != nil {
		return "", adminErr
	}
	toks = toks[:len(toks)-1] // EOF
	if n := len(toks); n > 0 && toks[n-1].is(";") {
		toks = toks[:n-1]
	}
	if !r.schemaShape(toks) {
		return "", adminErr
	}
	for i, t := range toks {
		switch {
		case t.is(";"):
			return "", adminErr
		case t.kind == tokIdent && slices.ContainsFunc(schemaForbidden, t.isKeyword):
			return "", adminErr
		case (t.isKeyword("EXISTS") || t.isKeyword("COUNT") || t.isKeyword("COLLECT")) && i+1 < len(toks) && toks[i+1].is("{"):
			return "", adminErr
		case t.kind == tokParam:
			return "", adminErr // parameters, and dynamic labels $(...)
		case (t.kind == tokIdent || t.kind == tokQuotedIdent) && r.reserved != "" && strings.HasPrefix(strings.ToLower(t.text), r.reserved):
			return "", refusef(ReasonReservedLabel, "name %s uses the reserved tenant label prefix", quoteName(t.text))
		}
	}
	var b strings.Builder
	for i, t := range toks {
		if i > 0 && t.pos > toks[i-1].end {
			b.WriteByte(' ')
		}
		b.WriteString(query[t.pos:t.end])
	}
	return b.String(), nil
}

// schemaShape reports whether toks start an index or constraint command.
func (r *Rewriter) schemaShape(toks []token) bool {
	kw := func(i int, words ...string) bool {
		return i < len(toks) && slices.ContainsFunc(words, toks[i].isKeyword)
	}
	switch {
	case kw(0, "CREATE"):
		i := 1
		if kw(i, indexKinds...) {
			i++
		}
		return kw(i, "INDEX") || i == 1 && kw(i, "CONSTRAINT")
	case kw(0, "DROP"):
		return kw(1, "INDEX", "CONSTRAINT")
	case kw(0, "SHOW"):
		i := 1
		for kw(i, showWords...) {
			i++
		}
		return kw(i, "INDEX", "INDEXES", "CONSTRAINT", "CONSTRAINTS") && i+1 == len(toks)
	}
	return false
}
