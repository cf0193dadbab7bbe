package cypher

import "strings"

// hardKeywords cannot be bare variable names: accepting them would make
// the grammar ambiguous. Other keywords (end, all, count, ...) may name
// variables, as in Neo4j.
var hardKeywords = map[string]bool{}

// quotedWords are printed in backticks when they name something, so that
// the printed query never reads a name as a keyword.
var quotedWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`AND AS CASE CONTAINS DISTINCT ELSE ENDS FALSE IN IS NOT NULL OR STARTS THEN TRUE WHEN WHERE XOR`) {
		hardKeywords[w] = true
	}
	for _, w := range strings.Fields(`ALL ALTER AND ANY AS ASC ASCENDING BY CALL CASE COLLECT CONCURRENT CONTAINS COUNT CREATE CSV DELETE
		DENY DESC DESCENDING DETACH DISTINCT DROP ELSE END ENDS ERROR EXISTS EXPLAIN FALSE FINISH FOREACH FROM GRANT IN
		INSERT IS LIMIT LOAD MATCH MERGE NODETACH NONE NOT NULL OF OFFSET ON OPTIONAL OR ORDER PROFILE REDUCE REMOVE
		REPORT RETURN REVOKE ROWS SET SHORTEST SHOW SINGLE SKIP STARTS STATUS THEN TRANSACTIONS TRUE UNION UNWIND USE
		WHEN WHERE WITH XOR YIELD`) {
		quotedWords[w] = true
	}
}

func isReserved(name string) bool { return inUpper(hardKeywords, name) }

func needsQuotes(name string) bool { return inUpper(quotedWords, name) }

// inUpper looks name up upper-cased, without allocating.
func inUpper(set map[string]bool, name string) bool {
	var buf [16]byte
	if len(name) > len(buf) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	return set[string(buf[:len(name)])]
}

// exprBeforeBar parses an expression that a | may end.
func (p *parser) exprBeforeBar() Expr {
	saved := p.barEndsExpr
	p.barEndsExpr = true
	defer func() { p.barEndsExpr = saved }()
	return p.expr()
}

// expr parses an expression (lowest precedence: OR).
func (p *parser) expr() Expr {
	p.enter()
	defer p.leave()
	e := p.xorExpr()
	for p.acceptKeyword("OR") {
		e = &Binary{Op: "OR", L: e, R: p.xorExpr()}
	}
	return e
}

func (p *parser) xorExpr() Expr {
	e := p.andExpr()
	for p.acceptKeyword("XOR") {
		e = &Binary{Op: "XOR", L: e, R: p.andExpr()}
	}
	return e
}

func (p *parser) andExpr() Expr {
	e := p.notExpr()
	for p.acceptKeyword("AND") {
		e = &Binary{Op: "AND", L: e, R: p.notExpr()}
	}
	return e
}

func (p *parser) notExpr() Expr {
	if p.acceptKeyword("NOT") {
		p.enter()
		defer p.leave()
		return &Unary{Op: "NOT", X: p.notExpr()}
	}
	return p.comparison()
}

var comparisonOps = []string{"=", "<>", "!=", "<=", ">=", "<", ">", "=~"}

func (p *parser) comparisonOp() string {
	for _, op := range comparisonOps {
		if p.peek().is(op) {
			return op
		}
	}
	return ""
}

// comparison parses one comparison. Chained comparisons (a < b < c) mean
// a < b AND b < c in Cypher; they are refused rather than risk printing
// them with another meaning.
func (p *parser) comparison() Expr {
	e := p.predicateExpr()
	if op := p.comparisonOp(); op != "" {
		p.advance()
		if op == "!=" {
			op = "<>"
		}
		e = &Binary{Op: op, L: e, R: p.predicateExpr()}
		if p.comparisonOp() != "" {
			p.fail("chained comparisons are not supported; use AND")
		}
	}
	return e
}

// predicateExpr parses string, list and null predicates.
func (p *parser) predicateExpr() Expr {
	e := p.additive()
	for {
		switch {
		case p.acceptKeyword("STARTS", "WITH"):
			e = &Binary{Op: "STARTS WITH", L: e, R: p.additive()}
		case p.acceptKeyword("ENDS", "WITH"):
			e = &Binary{Op: "ENDS WITH", L: e, R: p.additive()}
		case p.acceptKeyword("CONTAINS"):
			e = &Binary{Op: "CONTAINS", L: e, R: p.additive()}
		case p.acceptKeyword("IN"):
			e = &Binary{Op: "IN", L: e, R: p.additive()}
		case p.acceptKeyword("IS", "NULL"):
			e = &IsNull{X: e}
		case p.acceptKeyword("IS", "NOT", "NULL"):
			e = &IsNull{X: e, Not: true}
		case p.peek().isKeyword("IS"):
			p.fail("unsupported IS predicate")
		default:
			return e
		}
	}
}

func (p *parser) additive() Expr {
	e := p.multiplicative()
	for {
		switch {
		case p.accept("+"):
			e = &Binary{Op: "+", L: e, R: p.multiplicative()}
		case p.accept("-"):
			e = &Binary{Op: "-", L: e, R: p.multiplicative()}
		default:
			return e
		}
	}
}

func (p *parser) multiplicative() Expr {
	e := p.power()
	for {
		var op string
		for _, o := range []string{"*", "/", "%"} {
			if p.accept(o) {
				op = o
				break
			}
		}
		if op == "" {
			return e
		}
		e = &Binary{Op: op, L: e, R: p.power()}
	}
}

func (p *parser) power() Expr {
	e := p.unary()
	for p.accept("^") {
		e = &Binary{Op: "^", L: e, R: p.unary()}
	}
	return e
}

func (p *parser) unary() Expr {
	for _, op := range []string{"-", "+"} {
		if p.accept(op) {
			p.enter()
			defer p.leave()
			return &Unary{Op: op, X: p.unary()}
		}
	}
	return p.postfix()
}

// postfix parses an atom followed by property lookups, indexes, slices
// and a label predicate.
func (p *parser) postfix() Expr {
	e := p.atom()
	for {
		switch {
		case p.accept("."):
			e = &Prop{X: e, Key: p.ident("a property key")}
		case p.accept("["):
			if p.accept("..") {
				s := &Slice{X: e}
				if !p.peek().is("]") {
					s.To = p.expr()
				}
				p.expect("]")
				e = s
				continue
			}
			idx := p.expr()
			if p.accept("..") {
				s := &Slice{X: e, From: idx}
				if !p.peek().is("]") {
					s.To = p.expr()
				}
				p.expect("]")
				e = s
				continue
			}
			p.expect("]")
			e = &Index{X: e, Index: idx}
		case p.peek().is(":"), p.isLabelIS():
			p.advance()
			e = &LabelPredicate{X: e, Labels: p.labelExpr(true)}
		default:
			return e
		}
	}
}

// notLabels follow IS in predicates that are not label predicates.
var notLabels = []string{"NULL", "NOT", "TYPED", "NORMALIZED", "NFC", "NFD", "NFKC", "NFKD"}

// isLabelIS reports whether an IS here starts a label predicate (x IS
// Person), printed as x:Person.
func (p *parser) isLabelIS() bool {
	if !p.peek().isKeyword("IS") {
		return false
	}
	next := p.peekAt(1)
	switch {
	case next.kind == tokQuotedIdent, next.is("!"), next.is("%"), next.is("("):
		return true
	case next.kind != tokIdent:
		return false
	}
	for _, kw := range notLabels {
		if next.isKeyword(kw) {
			return false
		}
	}
	return true
}

func (p *parser) atom() Expr {
	p.enter()
	defer p.leave()
	// Inside an atom's own brackets a | is never the enclosing construct's.
	saved := p.barEndsExpr
	p.barEndsExpr = false
	defer func() { p.barEndsExpr = saved }()
	t := p.peek()
	switch t.kind {
	case tokInteger:
		p.advance()
		return &Literal{Kind: LitInteger, Text: t.text}
	case tokFloat:
		p.advance()
		return &Literal{Kind: LitFloat, Text: t.text}
	case tokString:
		p.advance()
		return &Literal{Kind: LitString, Text: t.text}
	case tokParam:
		p.advance()
		return &Param{Name: t.text}
	case tokQuotedIdent:
		return p.identAtom()
	case tokPunct:
		switch t.text {
		case "(":
			return p.parenOrPattern()
		case "[":
			return p.listAtom()
		case "{":
			return p.mapLiteral()
		}
		p.fail("unexpected %s", describe(t))
	case tokEOF:
		p.fail("unexpected end of the query")
	}
	// bare identifier
	switch {
	case t.isKeyword("TRUE"):
		p.advance()
		return &Literal{Kind: LitTrue}
	case t.isKeyword("FALSE"):
		p.advance()
		return &Literal{Kind: LitFalse}
	case t.isKeyword("NULL"):
		p.advance()
		return &Literal{Kind: LitNull}
	case t.isKeyword("CASE"):
		p.advance()
		return p.caseExpr()
	case (t.isKeyword("EXISTS") || t.isKeyword("COUNT") || t.isKeyword("COLLECT")) && p.peekAt(1).is("{"):
		p.i += 2
		return p.subquery(strings.ToUpper(t.text))
	}
	if kind := strings.ToLower(t.text); (kind == "all" || kind == "any" || kind == "none" || kind == "single") && p.peekAt(1).is("(") {
		p.i += 2
		return p.quantifier(kind)
	}
	if strings.EqualFold(t.text, "reduce") && p.peekAt(1).is("(") {
		p.i += 2
		return p.reduce()
	}
	if isReserved(t.text) && !(t.isKeyword("EXISTS") && p.peekAt(1).is("(")) {
		p.fail("unexpected %s", describe(t))
	}
	return p.identAtom()
}

// identAtom parses a variable, a function call or a map projection.
func (p *parser) identAtom() Expr {
	start := p.i
	name := []string{p.ident("a name")}
	for p.peek().is(".") && (p.peekAt(1).kind == tokIdent || p.peekAt(1).kind == tokQuotedIdent) {
		p.advance()
		name = append(name, p.ident("a name"))
	}
	if p.accept("(") {
		return p.funcCall(name)
	}
	p.i = start + 1
	v := name[0]
	if p.peek().is("{") {
		return p.mapProjection(v)
	}
	return &Var{Name: v}
}

func (p *parser) funcCall(name []string) Expr {
	f := &FuncCall{Name: name}
	if len(name) == 1 && strings.EqualFold(name[0], "count") && p.peek().is("*") && p.peekAt(1).is(")") {
		p.i += 2
		f.Star = true
		return f
	}
	f.Distinct = p.acceptKeyword("DISTINCT")
	if !p.accept(")") {
		for {
			f.Args = append(f.Args, p.expr())
			if !p.accept(",") {
				break
			}
		}
		p.expect(")")
	}
	return f
}

// parenOrPattern parses a parenthesised expression or a pattern predicate
// such as (a)-[:R]->(b). The pattern is tried first.
func (p *parser) parenOrPattern() Expr {
	start := p.i
	if el, ok := p.tryPatternElement(); ok && len(el.Rels) > 0 {
		return &PatternPredicate{Element: el}
	}
	p.i = start
	p.expect("(")
	e := p.expr()
	p.expect(")")
	return e
}

// tryPatternElement parses a pattern element if one starts here, and
// reports whether it did; on failure the position is unchanged. Results
// are memoised by position: without that, nested ambiguous parentheses
// would be re-parsed an exponential number of times.
func (p *parser) tryPatternElement() (el *PatternElement, ok bool) {
	start, depth := p.i, p.depth
	if m, seen := p.patterns[start]; seen {
		if m.element != nil {
			p.i = m.end
		}
		return m.element, m.element != nil
	}
	defer func() {
		if r := recover(); r != nil {
			b, isBail := r.(errBail)
			if !isBail || b.err.Reason != ReasonSyntax {
				panic(r)
			}
			p.i, p.depth = start, depth
			el, ok = nil, false
		}
		if p.patterns == nil {
			p.patterns = map[int]patternAttempt{}
		}
		p.patterns[start] = patternAttempt{element: el, end: p.i}
	}()
	return p.patternElement(), true
}

func (p *parser) listAtom() Expr {
	p.expect("[")
	// list comprehension: [x IN list ...]
	if p.isVariableStart() && p.peekAt(1).isKeyword("IN") {
		lc := &ListComprehension{Var: p.variable()}
		p.advance()
		lc.List = p.exprBeforeBar()
		if p.acceptKeyword("WHERE") {
			lc.Where = p.exprBeforeBar()
		}
		if p.accept("|") {
			lc.Proj = p.expr()
		}
		p.expect("]")
		return lc
	}
	// pattern comprehension: [path = (a)-->(b) WHERE ... | expr]
	start := p.i
	pathVar := ""
	if p.isVariableStart() && p.peekAt(1).is("=") {
		pathVar = p.variable()
		p.advance()
	}
	if p.peek().is("(") {
		if el, ok := p.tryPatternElement(); ok && len(el.Rels) > 0 && (p.peek().isKeyword("WHERE") || p.peek().is("|")) {
			pc := &PatternComprehension{PathVar: pathVar, Element: el}
			if p.acceptKeyword("WHERE") {
				pc.Where = p.exprBeforeBar()
			}
			p.expect("|")
			pc.Proj = p.expr()
			p.expect("]")
			return pc
		}
	}
	p.i = start
	l := &ListLiteral{}
	if !p.accept("]") {
		for {
			l.Items = append(l.Items, p.expr())
			if !p.accept(",") {
				break
			}
		}
		p.expect("]")
	}
	return l
}

func (p *parser) mapLiteral() *MapLiteral {
	p.expect("{")
	m := &MapLiteral{}
	if p.accept("}") {
		return m
	}
	for {
		m.Keys = append(m.Keys, p.ident("a map key"))
		p.expect(":")
		m.Values = append(m.Values, p.expr())
		if !p.accept(",") {
			break
		}
	}
	p.expect("}")
	return m
}

func (p *parser) mapProjection(v string) Expr {
	p.expect("{")
	mp := &MapProjection{Var: v}
	if p.accept("}") {
		return mp
	}
	for {
		item := &MapProjectionItem{}
		switch {
		case p.accept("."):
			if p.accept("*") {
				item.AllProps = true
			} else {
				item.Prop = true
				item.Key = p.ident("a property key")
			}
		case p.peekAt(1).is(":"):
			item.Key = p.ident("a map key")
			p.advance()
			item.Value = p.expr()
		default:
			item.Var = p.variable()
		}
		mp.Items = append(mp.Items, item)
		if !p.accept(",") {
			break
		}
	}
	p.expect("}")
	return mp
}

func (p *parser) caseExpr() Expr {
	c := &Case{}
	if !p.peek().isKeyword("WHEN") {
		c.Test = p.expr()
	}
	for p.acceptKeyword("WHEN") {
		w := &When{Cond: p.expr()}
		p.expectKeyword("THEN")
		w.Result = p.expr()
		c.Whens = append(c.Whens, w)
	}
	if len(c.Whens) == 0 {
		p.fail("CASE needs at least one WHEN")
	}
	if p.acceptKeyword("ELSE") {
		c.Else = p.expr()
	}
	p.expectKeyword("END")
	return c
}

func (p *parser) subquery(kind string) Expr {
	s := &Subquery{Kind: kind}
	if p.peek().is("(") || p.isVariableStart() && p.peekAt(1).is("=") {
		s.Pattern = p.pattern()
		if p.acceptKeyword("WHERE") {
			s.Where = p.expr()
		}
		if kind != "EXISTS" && kind != "COUNT" {
			p.fail("%s { } needs a full query ending in RETURN", kind)
		}
	} else {
		s.Query = p.query()
	}
	p.expect("}")
	return s
}

func (p *parser) quantifier(kind string) Expr {
	q := &Quantifier{Kind: kind, Var: p.variable()}
	p.expectKeyword("IN")
	q.List = p.expr()
	if p.acceptKeyword("WHERE") {
		q.Where = p.expr()
	}
	p.expect(")")
	return q
}

func (p *parser) reduce() Expr {
	r := &Reduce{Acc: p.variable()}
	p.expect("=")
	r.Init = p.expr()
	p.expect(",")
	r.Var = p.variable()
	p.expectKeyword("IN")
	r.List = p.exprBeforeBar()
	p.expect("|")
	r.Expr = p.expr()
	p.expect(")")
	return r
}
