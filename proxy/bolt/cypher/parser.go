package cypher

import "strings"

// maxDepth bounds the nesting of expressions, patterns and subqueries.
const maxDepth = 128

// Parse parses one Cypher statement. Anything outside the supported
// grammar is an *Error; so are LOAD CSV, USE and administration commands,
// which are recognised so that they are refused with a clear reason.
func Parse(src string) (*Statement, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	return p.statement()
}

type parser struct {
	src   string
	toks  []token
	i     int
	depth int
	// labelExpressions: a node label expression used & | ! or %.
	labelExpressions bool
	// patterns memoises tryPatternElement by token position.
	patterns map[int]patternAttempt
	// columns holds the source text of unaliased RETURN items.
	columns map[*ProjectionItem]string
	// barEndsExpr: a | ends the expression being parsed (the WHERE of a
	// comprehension, the list of reduce or FOREACH) rather than extending
	// a label predicate: [(a)-->(b) WHERE b:Person | b.name].
	barEndsExpr bool
}

// patternAttempt is the outcome of parsing a pattern element at a
// position: the element and where it ended, or nil when none parses there.
type patternAttempt struct {
	element *PatternElement
	end     int
}

// errBail unwinds the parser; the *Error it carries is returned by Parse.
type errBail struct{ err *Error }

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) advance() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) fail(format string, args ...any) {
	panic(errBail{syntaxErrorf(p.peek().pos, format, args...)})
}

func (p *parser) refuse(reason Reason, format string, args ...any) {
	panic(errBail{refusef(reason, format, args...)})
}

func (p *parser) acceptKeyword(kws ...string) bool {
	for n, kw := range kws {
		if !p.peekAt(n).isKeyword(kw) {
			return false
		}
	}
	p.i += len(kws)
	return true
}

func (p *parser) expectKeyword(kws ...string) {
	if !p.acceptKeyword(kws...) {
		p.fail("expected %s, found %s", strings.Join(kws, " "), describe(p.peek()))
	}
}

func (p *parser) accept(punct string) bool {
	if p.peek().is(punct) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expect(punct string) {
	if !p.accept(punct) {
		p.fail("expected %q, found %s", punct, describe(p.peek()))
	}
}

func describe(t token) string {
	switch t.kind {
	case tokEOF:
		return "the end of the query"
	case tokString:
		return "a string"
	case tokParam:
		return "a parameter"
	}
	return "'" + t.text + "'"
}

// ident consumes a name: a bare identifier or a quoted one.
func (p *parser) ident(what string) string {
	t := p.peek()
	if t.kind != tokIdent && t.kind != tokQuotedIdent {
		p.fail("expected %s, found %s", what, describe(t))
	}
	p.i++
	return t.text
}

// variable consumes a variable name; reserved words must be quoted.
func (p *parser) variable() string {
	t := p.peek()
	if t.kind == tokIdent && isReserved(t.text) {
		p.fail("expected a variable, found %s", describe(t))
	}
	return p.ident("a variable")
}

func (p *parser) isVariableStart() bool {
	t := p.peek()
	return t.kind == tokQuotedIdent || t.kind == tokIdent && !isReserved(t.text)
}

func (p *parser) enter() {
	p.depth++
	if p.depth > maxDepth {
		p.fail("the query nests deeper than %d levels", maxDepth)
	}
}

func (p *parser) leave() { p.depth-- }

func (p *parser) statement() (st *Statement, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(errBail)
			if !ok {
				panic(r)
			}
			st, err = nil, b.err
		}
	}()
	st = &Statement{}
	switch {
	case p.acceptKeyword("EXPLAIN"):
		st.Prefix = "EXPLAIN"
	case p.acceptKeyword("PROFILE"):
		st.Prefix = "PROFILE"
	}
	st.Query = p.query()
	st.labelExpressions = p.labelExpressions
	st.columns = p.columns
	p.accept(";")
	if p.peek().kind != tokEOF {
		p.fail("unexpected %s", describe(p.peek()))
	}
	return st, nil
}

func (p *parser) query() *Query {
	q := &Query{Parts: []*SingleQuery{p.singleQuery()}}
	for p.acceptKeyword("UNION") {
		q.UnionAll = append(q.UnionAll, p.acceptKeyword("ALL"))
		q.Parts = append(q.Parts, p.singleQuery())
	}
	return q
}

func (p *parser) singleQuery() *SingleQuery {
	sq := &SingleQuery{}
	for {
		t := p.peek()
		if t.kind == tokEOF || t.is("}") || t.is(";") || t.isKeyword("UNION") {
			break
		}
		sq.Clauses = append(sq.Clauses, p.clause())
	}
	if len(sq.Clauses) == 0 {
		p.fail("expected a clause, found %s", describe(p.peek()))
	}
	return sq
}

// adminKeywords start administration and schema commands.
var adminKeywords = []string{"SHOW", "DROP", "GRANT", "DENY", "REVOKE", "ALTER", "START", "STOP", "TERMINATE", "ENABLE", "RENAME", "DEALLOCATE", "REALLOCATE", "DRYRUN"}

// createAdminObjects follow CREATE in schema and administration commands.
var createAdminObjects = []string{"INDEX", "CONSTRAINT", "DATABASE", "USER", "ROLE", "ALIAS", "COMPOSITE", "OR", "TEXT", "FULLTEXT", "RANGE", "POINT", "LOOKUP", "VECTOR", "BTREE", "SERVER"}

func (p *parser) clause() Clause {
	p.enter()
	defer p.leave()
	t := p.peek()
	if t.kind != tokIdent {
		p.fail("expected a clause, found %s", describe(t))
	}
	for _, kw := range adminKeywords {
		if t.isKeyword(kw) {
			p.refuse(ReasonAdmin, "administration and schema commands (%s ...) are not allowed through the proxy", strings.ToUpper(kw))
		}
	}
	switch {
	case p.acceptKeyword("MATCH"):
		return p.match(false)
	case p.acceptKeyword("OPTIONAL", "MATCH"):
		return p.match(true)
	case p.acceptKeyword("UNWIND"):
		u := &Unwind{List: p.expr()}
		p.expectKeyword("AS")
		u.Var = p.variable()
		return u
	case p.acceptKeyword("WITH"):
		w := &With{Projection: p.projection()}
		if p.acceptKeyword("WHERE") {
			w.Where = p.expr()
		}
		return w
	case p.acceptKeyword("RETURN"):
		return &Return{Projection: p.projection()}
	case t.isKeyword("CREATE"):
		for _, obj := range createAdminObjects {
			if p.peekAt(1).isKeyword(obj) {
				p.refuse(ReasonAdmin, "administration and schema commands (CREATE %s ...) are not allowed through the proxy", strings.ToUpper(obj))
			}
		}
		p.advance()
		return &Create{Pattern: p.pattern()}
	case p.acceptKeyword("MERGE"):
		return p.merge()
	case p.acceptKeyword("SET"):
		return &Set{Items: p.setItems()}
	case p.acceptKeyword("REMOVE"):
		return p.remove()
	case p.acceptKeyword("DELETE"):
		return p.delete(false)
	case p.acceptKeyword("DETACH", "DELETE"):
		return p.delete(true)
	case p.acceptKeyword("NODETACH", "DELETE"):
		return p.delete(false)
	case p.acceptKeyword("FOREACH"):
		return p.foreach()
	case p.acceptKeyword("CALL"):
		if p.peek().is("{") || p.peek().is("(") {
			return p.callSubquery()
		}
		return p.callProcedure()
	case p.acceptKeyword("FINISH"):
		return &Finish{}
	case t.isKeyword("LOAD"):
		p.refuse(ReasonLoadCSV, "LOAD CSV is not allowed through the proxy")
	case t.isKeyword("USE"):
		p.refuse(ReasonUse, "USE is not allowed: the proxy chooses the database")
	}
	p.fail("unknown or unsupported clause %s", describe(t))
	return nil
}

func (p *parser) match(optional bool) *Match {
	m := &Match{Optional: optional, Pattern: p.pattern()}
	for p.acceptKeyword("USING") {
		m.Hints = append(m.Hints, p.hint())
	}
	if p.acceptKeyword("WHERE") {
		m.Where = p.expr()
	}
	return m
}

func (p *parser) hint() *Hint {
	h := &Hint{}
	switch {
	case p.acceptKeyword("JOIN", "ON"):
		h.Kind = "JOIN ON"
		for {
			h.Vars = append(h.Vars, p.variable())
			if !p.accept(",") {
				return h
			}
		}
	case p.acceptKeyword("SCAN"):
		h.Kind = "SCAN"
		h.Vars = []string{p.variable()}
		p.expect(":")
		h.Label = p.ident("a label")
		return h
	case p.acceptKeyword("INDEX"):
		h.Kind = "INDEX"
	default:
		for _, kind := range []string{"TEXT", "RANGE", "POINT"} {
			if p.acceptKeyword(kind, "INDEX") {
				h.Kind = kind + " INDEX"
			}
		}
		if h.Kind == "" {
			p.fail("expected INDEX, SCAN or JOIN ON after USING")
		}
	}
	h.Seek = p.acceptKeyword("SEEK")
	h.Vars = []string{p.variable()}
	p.expect(":")
	h.Label = p.ident("a label")
	p.expect("(")
	for {
		h.Props = append(h.Props, p.ident("a property key"))
		if !p.accept(",") {
			break
		}
	}
	p.expect(")")
	return h
}

func (p *parser) projection() Projection {
	var pr Projection
	pr.Distinct = p.acceptKeyword("DISTINCT")
	if p.accept("*") {
		pr.Star = true
		if !p.accept(",") {
			goto tail
		}
	}
	for {
		start := p.peek().pos
		item := &ProjectionItem{Expr: p.expr()}
		if p.acceptKeyword("AS") {
			item.Alias = p.variable()
		} else {
			if p.columns == nil {
				p.columns = map[*ProjectionItem]string{}
			}
			p.columns[item] = p.src[start:p.toks[p.i-1].end]
		}
		pr.Items = append(pr.Items, item)
		if !p.accept(",") {
			break
		}
	}
tail:
	if p.acceptKeyword("ORDER", "BY") {
		for {
			s := &SortItem{Expr: p.expr()}
			switch {
			case p.acceptKeyword("DESC"), p.acceptKeyword("DESCENDING"):
				s.Desc = true
			case p.acceptKeyword("ASC"), p.acceptKeyword("ASCENDING"):
			}
			pr.Order = append(pr.Order, s)
			if !p.accept(",") {
				break
			}
		}
	}
	if p.acceptKeyword("SKIP") || p.acceptKeyword("OFFSET") {
		pr.Skip = p.expr()
	}
	if p.acceptKeyword("LIMIT") {
		pr.Limit = p.expr()
	}
	return pr
}

func (p *parser) merge() *Merge {
	m := &Merge{Part: p.patternPart()}
	for p.peek().isKeyword("ON") {
		a := &MergeAction{}
		switch {
		case p.acceptKeyword("ON", "CREATE", "SET"):
			a.OnCreate = true
		case p.acceptKeyword("ON", "MATCH", "SET"):
		default:
			p.fail("expected ON CREATE SET or ON MATCH SET")
		}
		a.Items = p.setItems()
		m.Actions = append(m.Actions, a)
	}
	return m
}

func (p *parser) setItems() []*SetItem {
	var items []*SetItem
	for {
		items = append(items, p.setItem())
		if !p.accept(",") {
			return items
		}
	}
}

func (p *parser) setItem() *SetItem {
	name := p.variable()
	target := Expr(&Var{Name: name})
	if p.peek().is(":") {
		return &SetItem{Op: SetLabels, Target: target, Labels: p.labelList()}
	}
	if p.peek().isKeyword("IS") {
		p.fail("SET x IS Label is not supported; use SET x:Label")
	}
	for p.accept(".") {
		target = &Prop{X: target, Key: p.ident("a property key")}
	}
	if _, isProp := target.(*Prop); isProp {
		p.expect("=")
		return &SetItem{Op: SetProperty, Target: target, Value: p.expr()}
	}
	switch {
	case p.accept("="):
		return &SetItem{Op: SetReplace, Target: target, Value: p.expr()}
	case p.accept("+="):
		return &SetItem{Op: SetMerge, Target: target, Value: p.expr()}
	}
	p.fail("expected =, += or labels in SET, found %s", describe(p.peek()))
	return nil
}

// labelList parses :A:B (SET and REMOVE take plain label lists).
func (p *parser) labelList() []string {
	var labels []string
	for p.accept(":") {
		p.noDynamicLabel()
		labels = append(labels, p.ident("a label"))
	}
	return labels
}

func (p *parser) noDynamicLabel() {
	if p.peek().kind == tokParam {
		p.refuse(ReasonDynamicLabel, "dynamic labels and types $(...) are not allowed")
	}
}

func (p *parser) remove() *Remove {
	r := &Remove{}
	for {
		name := p.variable()
		if p.peek().is(":") {
			r.Items = append(r.Items, &RemoveItem{Var: name, Labels: p.labelList()})
		} else {
			p.expect(".")
			prop := &Prop{X: &Var{Name: name}, Key: p.ident("a property key")}
			for p.accept(".") {
				prop = &Prop{X: prop, Key: p.ident("a property key")}
			}
			r.Items = append(r.Items, &RemoveItem{Prop: prop})
		}
		if !p.accept(",") {
			return r
		}
	}
}

func (p *parser) delete(detach bool) *Delete {
	d := &Delete{Detach: detach}
	for {
		d.Exprs = append(d.Exprs, p.expr())
		if !p.accept(",") {
			return d
		}
	}
}

func (p *parser) foreach() *Foreach {
	p.expect("(")
	f := &Foreach{Var: p.variable()}
	p.expectKeyword("IN")
	f.List = p.exprBeforeBar()
	p.expect("|")
	for !p.peek().is(")") {
		f.Clauses = append(f.Clauses, p.clause())
	}
	p.expect(")")
	if len(f.Clauses) == 0 {
		p.fail("FOREACH needs at least one clause")
	}
	return f
}

func (p *parser) callSubquery() *CallSubquery {
	c := &CallSubquery{}
	if p.accept("(") {
		c.HasScope = true
		if p.accept("*") {
			c.ScopeAll = true
		} else if !p.peek().is(")") {
			for {
				c.ScopeVars = append(c.ScopeVars, p.variable())
				if !p.accept(",") {
					break
				}
			}
		}
		p.expect(")")
	}
	p.expect("{")
	c.Query = p.query()
	p.expect("}")
	if p.acceptKeyword("IN") {
		if p.peek().isKeyword("CONCURRENT") || p.peek().kind == tokInteger && p.peekAt(1).isKeyword("CONCURRENT") {
			p.fail("CALL { } IN CONCURRENT TRANSACTIONS is not supported")
		}
		p.expectKeyword("TRANSACTIONS")
		c.InTx = true
		if p.acceptKeyword("OF") {
			c.TxRows = p.expr()
			if !p.acceptKeyword("ROWS") {
				p.expectKeyword("ROW")
			}
		}
		if p.acceptKeyword("ON", "ERROR") {
			t := p.advance()
			switch {
			case t.isKeyword("CONTINUE"), t.isKeyword("BREAK"), t.isKeyword("FAIL"):
				c.TxOnError = strings.ToUpper(t.text)
			default:
				p.fail("expected CONTINUE, BREAK or FAIL after ON ERROR")
			}
		}
		if p.acceptKeyword("REPORT", "STATUS", "AS") {
			c.TxReportAs = p.variable()
		}
	}
	return c
}

func (p *parser) callProcedure() *CallProcedure {
	c := &CallProcedure{Name: []string{p.ident("a procedure name")}}
	for p.accept(".") {
		c.Name = append(c.Name, p.ident("a procedure name"))
	}
	if p.accept("(") {
		if !p.accept(")") {
			for {
				c.Args = append(c.Args, p.expr())
				if !p.accept(",") {
					break
				}
			}
			p.expect(")")
		}
	} else {
		c.NoParens = true
	}
	if p.acceptKeyword("YIELD") {
		if p.accept("*") {
			c.YieldStar = true
		} else {
			for {
				y := &YieldItem{Field: p.ident("a yield field")}
				if p.acceptKeyword("AS") {
					y.Alias = p.variable()
				}
				c.Yield = append(c.Yield, y)
				if !p.accept(",") {
					break
				}
			}
		}
		if p.acceptKeyword("WHERE") {
			c.Where = p.expr()
		}
	}
	return c
}

// pattern parses comma-separated pattern parts.
func (p *parser) pattern() []*PatternPart {
	parts := []*PatternPart{p.patternPart()}
	for p.accept(",") {
		parts = append(parts, p.patternPart())
	}
	return parts
}

func (p *parser) patternPart() *PatternPart {
	part := &PatternPart{}
	if p.isVariableStart() && p.peekAt(1).is("=") {
		part.Var = p.variable()
		p.advance()
	}
	for _, fn := range []string{"shortestPath", "allShortestPaths"} {
		if p.peek().isKeyword(fn) && p.peekAt(1).is("(") {
			p.i += 2
			part.Shortest = fn
			part.Element = p.patternElement()
			if len(part.Element.Rels) != 1 {
				p.fail("%s needs exactly one relationship", fn)
			}
			p.expect(")")
			return part
		}
	}
	if t := p.peek(); t.isKeyword("SHORTEST") || t.isKeyword("ANY") || t.isKeyword("ALL") {
		p.fail("GQL path selectors (%s) are not supported", strings.ToUpper(t.text))
	}
	part.Element = p.patternElement()
	return part
}

func (p *parser) patternElement() *PatternElement {
	p.enter()
	defer p.leave()
	e := &PatternElement{Nodes: []*NodePattern{p.nodePattern()}}
	for p.peek().is("-") || p.peek().is("<") {
		e.Rels = append(e.Rels, p.relPattern())
		e.Nodes = append(e.Nodes, p.nodePattern())
	}
	if p.peek().is("{") || p.peek().is("+") || p.peek().is("*") {
		p.fail("quantified path patterns are not supported")
	}
	return e
}

func (p *parser) nodePattern() *NodePattern {
	p.expect("(")
	if p.peek().is("(") {
		p.fail("parenthesised path patterns are not supported")
	}
	n := &NodePattern{}
	if p.isVariableStart() {
		n.Var = p.variable()
	}
	if p.accept(":") || p.acceptKeyword("IS") {
		n.Labels = p.labelExpr(true)
	}
	if p.peek().is("{") || p.peek().kind == tokParam {
		n.Props = p.properties()
	}
	if p.acceptKeyword("WHERE") {
		n.Where = p.expr()
	}
	p.expect(")")
	return n
}

func (p *parser) properties() Expr {
	if t := p.peek(); t.kind == tokParam {
		p.advance()
		return &Param{Name: t.text}
	}
	return p.mapLiteral()
}

func (p *parser) relPattern() *RelPattern {
	r := &RelPattern{}
	if p.accept("<") {
		r.Left = true
	}
	p.expect("-")
	if p.accept("[") {
		if p.isVariableStart() {
			r.Var = p.variable()
		}
		if p.accept(":") {
			r.Types = p.labelExpr(false)
		}
		if p.accept("*") {
			r.Range = p.rangeSpec()
		}
		if p.peek().is("{") || p.peek().kind == tokParam {
			r.Props = p.properties()
		}
		if p.acceptKeyword("WHERE") {
			r.Where = p.expr()
		}
		p.expect("]")
	}
	p.expect("-")
	if p.accept(">") {
		r.Right = true
	}
	return r
}

func (p *parser) rangeSpec() *Range {
	r := &Range{}
	if p.peek().kind == tokInteger {
		r.Min = p.advance().text
	}
	if p.accept("..") {
		r.Dots = true
		if p.peek().kind == tokInteger {
			r.Max = p.advance().text
		}
	}
	return r
}

// labelExpr parses what follows the first colon: either the legacy
// colon-separated form (:A:B for nodes, :A|:B for types) or a GPM label
// expression with & | ! % and parentheses.
func (p *parser) labelExpr(node bool) *LabelExpr {
	e := p.labelOr()
	if e.Op == LabelName && p.peek().is(":") && node {
		colon := &LabelExpr{Op: LabelColon, Args: []*LabelExpr{e}}
		for p.accept(":") {
			p.noDynamicLabel()
			colon.Args = append(colon.Args, &LabelExpr{Op: LabelName, Name: p.ident("a label")})
		}
		return colon
	}
	if node && e.Op != LabelName || !node && usesGPMOnly(e) {
		p.labelExpressions = true
	}
	return e
}

// usesGPMOnly reports whether a relationship type expression uses & ! or
// %, which the legacy syntax lacks (| alone is legacy too).
func usesGPMOnly(e *LabelExpr) bool {
	switch e.Op {
	case LabelAnd, LabelNot, LabelWildcard:
		return true
	}
	for _, a := range e.Args {
		if usesGPMOnly(a) {
			return true
		}
	}
	return false
}

func (p *parser) labelOr() *LabelExpr {
	e := p.labelAnd()
	for !p.barEndsExpr && p.accept("|") {
		p.accept(":") // legacy :A|:B
		e = &LabelExpr{Op: LabelOr, Args: []*LabelExpr{e, p.labelAnd()}}
	}
	return e
}

func (p *parser) labelAnd() *LabelExpr {
	e := p.labelNot()
	for p.accept("&") {
		e = &LabelExpr{Op: LabelAnd, Args: []*LabelExpr{e, p.labelNot()}}
	}
	return e
}

func (p *parser) labelNot() *LabelExpr {
	p.enter()
	defer p.leave()
	switch {
	case p.accept("!"):
		return &LabelExpr{Op: LabelNot, Args: []*LabelExpr{p.labelNot()}}
	case p.accept("%"):
		return &LabelExpr{Op: LabelWildcard}
	case p.accept("("):
		e := p.labelOr()
		p.expect(")")
		return e
	}
	p.noDynamicLabel()
	return &LabelExpr{Op: LabelName, Name: p.ident("a label")}
}
