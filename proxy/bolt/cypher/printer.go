package cypher

import (
	"fmt"
	"strings"
)

// String prints the statement as Cypher that parses back to the same AST.
// Operands of operators are parenthesised, so the printed text never
// depends on operator precedence.
func (st *Statement) String() string {
	var p printer
	if st.Prefix != "" {
		p.WriteString(st.Prefix + " ")
	}
	p.query(st.Query)
	return p.String()
}

type printer struct{ strings.Builder }

func (p *printer) query(q *Query) {
	for i, part := range q.Parts {
		if i > 0 {
			p.WriteString(" UNION ")
			if q.UnionAll[i-1] {
				p.WriteString("ALL ")
			}
		}
		p.clauses(part.Clauses)
	}
}

func (p *printer) clauses(cs []Clause) {
	for i, c := range cs {
		if i > 0 {
			p.WriteByte(' ')
		}
		p.clause(c)
	}
}

func (p *printer) clause(c Clause) {
	switch c := c.(type) {
	case *Match:
		if c.Optional {
			p.WriteString("OPTIONAL ")
		}
		p.WriteString("MATCH ")
		p.pattern(c.Pattern)
		for _, h := range c.Hints {
			p.hint(h)
		}
		p.where(c.Where)
	case *Finish:
		p.WriteString("FINISH")
	case *Unwind:
		p.WriteString("UNWIND ")
		p.expr(c.List)
		p.WriteString(" AS " + quoteName(c.Var))
	case *With:
		p.WriteString("WITH ")
		p.projection(&c.Projection)
		p.where(c.Where)
	case *Return:
		p.WriteString("RETURN ")
		p.projection(&c.Projection)
	case *Create:
		p.WriteString("CREATE ")
		p.pattern(c.Pattern)
	case *Merge:
		p.WriteString("MERGE ")
		p.patternPart(c.Part)
		for _, a := range c.Actions {
			if a.OnCreate {
				p.WriteString(" ON CREATE SET ")
			} else {
				p.WriteString(" ON MATCH SET ")
			}
			p.setItems(a.Items)
		}
	case *Set:
		p.WriteString("SET ")
		p.setItems(c.Items)
	case *Remove:
		p.WriteString("REMOVE ")
		for i, item := range c.Items {
			if i > 0 {
				p.WriteString(", ")
			}
			if item.Prop != nil {
				p.expr(item.Prop)
			} else {
				p.WriteString(quoteName(item.Var) + labelList(item.Labels))
			}
		}
	case *Delete:
		if c.Detach {
			p.WriteString("DETACH ")
		}
		p.WriteString("DELETE ")
		p.exprList(c.Exprs)
	case *Foreach:
		p.WriteString("FOREACH (" + quoteName(c.Var) + " IN ")
		p.exprBeforeBar(c.List)
		p.WriteString(" | ")
		p.clauses(c.Clauses)
		p.WriteString(")")
	case *CallSubquery:
		p.callSubquery(c)
	case *CallProcedure:
		p.callProcedure(c)
	}
}

func (p *printer) hint(h *Hint) {
	names := make([]string, len(h.Vars))
	for i, v := range h.Vars {
		names[i] = quoteName(v)
	}
	p.WriteString(" USING " + h.Kind + " ")
	if h.Seek {
		p.WriteString("SEEK ")
	}
	p.WriteString(strings.Join(names, ", "))
	if h.Label != "" {
		p.WriteString(":" + quoteName(h.Label))
	}
	if len(h.Props) > 0 {
		props := make([]string, len(h.Props))
		for i, k := range h.Props {
			props[i] = quoteName(k)
		}
		p.WriteString("(" + strings.Join(props, ", ") + ")")
	}
}

func (p *printer) where(e Expr) {
	if e != nil {
		p.WriteString(" WHERE ")
		p.expr(e)
	}
}

func (p *printer) projection(pr *Projection) {
	if pr.Distinct {
		p.WriteString("DISTINCT ")
	}
	if pr.Star {
		p.WriteString("*")
		if len(pr.Items) > 0 {
			p.WriteString(", ")
		}
	}
	for i, item := range pr.Items {
		if i > 0 {
			p.WriteString(", ")
		}
		p.expr(item.Expr)
		if item.Alias != "" {
			p.WriteString(" AS " + quoteName(item.Alias))
		}
	}
	if len(pr.Order) > 0 {
		p.WriteString(" ORDER BY ")
		for i, s := range pr.Order {
			if i > 0 {
				p.WriteString(", ")
			}
			p.expr(s.Expr)
			if s.Desc {
				p.WriteString(" DESC")
			}
		}
	}
	if pr.Skip != nil {
		p.WriteString(" SKIP ")
		p.expr(pr.Skip)
	}
	if pr.Limit != nil {
		p.WriteString(" LIMIT ")
		p.expr(pr.Limit)
	}
}

func (p *printer) setItems(items []*SetItem) {
	for i, item := range items {
		if i > 0 {
			p.WriteString(", ")
		}
		p.expr(item.Target)
		switch item.Op {
		case SetProperty, SetReplace:
			p.WriteString(" = ")
			p.expr(item.Value)
		case SetMerge:
			p.WriteString(" += ")
			p.expr(item.Value)
		case SetLabels:
			p.WriteString(labelList(item.Labels))
		}
	}
}

func labelList(labels []string) string {
	var b strings.Builder
	for _, l := range labels {
		b.WriteString(":" + quoteName(l))
	}
	return b.String()
}

func (p *printer) callSubquery(c *CallSubquery) {
	p.WriteString("CALL ")
	if c.HasScope {
		switch {
		case c.ScopeAll:
			p.WriteString("(*) ")
		default:
			names := make([]string, len(c.ScopeVars))
			for i, v := range c.ScopeVars {
				names[i] = quoteName(v)
			}
			p.WriteString("(" + strings.Join(names, ", ") + ") ")
		}
	}
	p.WriteString("{ ")
	p.query(c.Query)
	p.WriteString(" }")
	if !c.InTx {
		return
	}
	p.WriteString(" IN TRANSACTIONS")
	if c.TxRows != nil {
		p.WriteString(" OF ")
		p.expr(c.TxRows)
		p.WriteString(" ROWS")
	}
	if c.TxOnError != "" {
		p.WriteString(" ON ERROR " + c.TxOnError)
	}
	if c.TxReportAs != "" {
		p.WriteString(" REPORT STATUS AS " + quoteName(c.TxReportAs))
	}
}

func (p *printer) callProcedure(c *CallProcedure) {
	p.WriteString("CALL " + qualifiedName(c.Name))
	if !c.NoParens {
		p.WriteString("(")
		p.exprList(c.Args)
		p.WriteString(")")
	}
	switch {
	case c.YieldStar:
		p.WriteString(" YIELD *")
	case len(c.Yield) > 0:
		p.WriteString(" YIELD ")
		for i, y := range c.Yield {
			if i > 0 {
				p.WriteString(", ")
			}
			p.WriteString(quoteName(y.Field))
			if y.Alias != "" {
				p.WriteString(" AS " + quoteName(y.Alias))
			}
		}
	}
	p.where(c.Where)
}

func qualifiedName(parts []string) string {
	out := make([]string, len(parts))
	for i, n := range parts {
		if isSimpleName(n) {
			out[i] = n
		} else {
			out[i] = quoteName(n)
		}
	}
	return strings.Join(out, ".")
}

func (p *printer) pattern(parts []*PatternPart) {
	for i, part := range parts {
		if i > 0 {
			p.WriteString(", ")
		}
		p.patternPart(part)
	}
}

func (p *printer) patternPart(part *PatternPart) {
	if part.Var != "" {
		p.WriteString(quoteName(part.Var) + " = ")
	}
	if part.Shortest != "" {
		p.WriteString(part.Shortest + "(")
		p.element(part.Element)
		p.WriteString(")")
		return
	}
	p.element(part.Element)
}

func (p *printer) element(e *PatternElement) {
	p.node(e.Nodes[0])
	for i, r := range e.Rels {
		p.rel(r)
		p.node(e.Nodes[i+1])
	}
}

func (p *printer) node(n *NodePattern) {
	p.WriteString("(" + quoteNameOpt(n.Var))
	if n.Labels != nil {
		p.WriteString(":" + labelExprString(n.Labels))
	}
	if n.Props != nil {
		if n.Var != "" || n.Labels != nil {
			p.WriteByte(' ')
		}
		p.expr(n.Props)
	}
	if n.Where != nil {
		p.where(n.Where)
	}
	p.WriteString(")")
}

func (p *printer) rel(r *RelPattern) {
	if r.Left {
		p.WriteString("<")
	}
	p.WriteString("-")
	if r.Var != "" || r.Types != nil || r.Range != nil || r.Props != nil || r.Where != nil {
		p.WriteString("[" + quoteNameOpt(r.Var))
		if r.Types != nil {
			p.WriteString(":" + labelExprString(r.Types))
		}
		if rg := r.Range; rg != nil {
			p.WriteString("*" + rg.Min)
			if rg.Dots {
				p.WriteString(".." + rg.Max)
			}
		}
		if r.Props != nil {
			p.WriteByte(' ')
			p.expr(r.Props)
		}
		p.where(r.Where)
		p.WriteString("]")
	}
	p.WriteString("-")
	if r.Right {
		p.WriteString(">")
	}
}

func labelExprString(e *LabelExpr) string {
	switch e.Op {
	case LabelName:
		return quoteName(e.Name)
	case LabelColon:
		names := make([]string, len(e.Args))
		for i, a := range e.Args {
			names[i] = quoteName(a.Name)
		}
		return strings.Join(names, ":")
	case LabelAnd, LabelOr:
		sep := "&"
		if e.Op == LabelOr {
			sep = "|"
		}
		parts := make([]string, len(e.Args))
		for i, a := range e.Args {
			parts[i] = labelOperand(a)
		}
		return strings.Join(parts, sep)
	case LabelNot:
		return "!" + labelOperand(e.Args[0])
	default:
		return "%"
	}
}

func labelOperand(e *LabelExpr) string {
	if e.Op == LabelAnd || e.Op == LabelOr {
		return "(" + labelExprString(e) + ")"
	}
	return labelExprString(e)
}

func (p *printer) exprList(es []Expr) {
	for i, e := range es {
		if i > 0 {
			p.WriteString(", ")
		}
		p.expr(e)
	}
}

// exprBeforeBar prints an expression that a | follows: a label predicate
// at its top would take the | for a label disjunction.
func (p *printer) exprBeforeBar(e Expr) {
	if _, ok := e.(*LabelPredicate); ok {
		p.operand(e)
		return
	}
	p.expr(e)
}

// operand prints e, parenthesised unless it is atomic.
func (p *printer) operand(e Expr) {
	switch e.(type) {
	case *Binary, *Unary, *IsNull, *LabelPredicate, *PatternPredicate, *MapProjection:
		p.WriteString("(")
		p.expr(e)
		p.WriteString(")")
	default:
		p.expr(e)
	}
}

func (p *printer) expr(e Expr) {
	switch e := e.(type) {
	case *Literal:
		p.literal(e)
	case *Param:
		if isSimpleName(e.Name) || isDigits(e.Name) {
			p.WriteString("$" + e.Name)
		} else {
			p.WriteString("$" + backtick(e.Name))
		}
	case *Var:
		p.WriteString(quoteName(e.Name))
	case *Prop:
		p.operand(e.X)
		p.WriteString("." + quoteName(e.Key))
	case *Index:
		p.operand(e.X)
		p.WriteString("[")
		p.expr(e.Index)
		p.WriteString("]")
	case *Slice:
		p.operand(e.X)
		p.WriteString("[")
		if e.From != nil {
			p.expr(e.From)
		}
		p.WriteString("..")
		if e.To != nil {
			p.expr(e.To)
		}
		p.WriteString("]")
	case *Binary:
		p.operand(e.L)
		p.WriteString(" " + e.Op + " ")
		p.operand(e.R)
	case *Unary:
		if e.Op == "NOT" {
			p.WriteString("NOT ")
		} else {
			p.WriteString(e.Op)
		}
		p.operand(e.X)
	case *IsNull:
		p.operand(e.X)
		if e.Not {
			p.WriteString(" IS NOT NULL")
		} else {
			p.WriteString(" IS NULL")
		}
	case *LabelPredicate:
		p.operand(e.X)
		p.WriteString(":" + labelExprString(e.Labels))
	case *ListLiteral:
		p.WriteString("[")
		for i, item := range e.Items {
			if i > 0 {
				p.WriteString(", ")
			}
			if b, ok := item.(*Binary); ok && i == 0 && b.Op == "IN" {
				p.operand(item) // [x IN y] would read as a comprehension
			} else {
				p.expr(item)
			}
		}
		p.WriteString("]")
	case *MapLiteral:
		p.WriteString("{")
		for i, k := range e.Keys {
			if i > 0 {
				p.WriteString(", ")
			}
			p.WriteString(quoteName(k) + ": ")
			p.expr(e.Values[i])
		}
		p.WriteString("}")
	case *MapProjection:
		p.mapProjection(e)
	case *FuncCall:
		p.WriteString(qualifiedName(e.Name) + "(")
		switch {
		case e.Star:
			p.WriteString("*")
		default:
			if e.Distinct {
				p.WriteString("DISTINCT ")
			}
			p.exprList(e.Args)
		}
		p.WriteString(")")
	case *Case:
		p.caseExpr(e)
	case *ListComprehension:
		p.WriteString("[" + quoteName(e.Var) + " IN ")
		p.exprBeforeBar(e.List)
		if e.Where != nil {
			p.WriteString(" WHERE ")
			p.exprBeforeBar(e.Where)
		}
		if e.Proj != nil {
			p.WriteString(" | ")
			p.expr(e.Proj)
		}
		p.WriteString("]")
	case *Quantifier:
		p.WriteString(e.Kind + "(" + quoteName(e.Var) + " IN ")
		p.expr(e.List)
		p.where(e.Where)
		p.WriteString(")")
	case *Reduce:
		p.WriteString("reduce(" + quoteName(e.Acc) + " = ")
		p.expr(e.Init)
		p.WriteString(", " + quoteName(e.Var) + " IN ")
		p.exprBeforeBar(e.List)
		p.WriteString(" | ")
		p.expr(e.Expr)
		p.WriteString(")")
	case *PatternComprehension:
		p.WriteString("[")
		if e.PathVar != "" {
			p.WriteString(quoteName(e.PathVar) + " = ")
		}
		p.element(e.Element)
		if e.Where != nil {
			p.WriteString(" WHERE ")
			p.exprBeforeBar(e.Where)
		}
		p.WriteString(" | ")
		p.expr(e.Proj)
		p.WriteString("]")
	case *PatternPredicate:
		p.element(e.Element)
	case *Subquery:
		p.WriteString(e.Kind + " { ")
		if e.Query != nil {
			p.query(e.Query)
		} else {
			p.pattern(e.Pattern)
			p.where(e.Where)
		}
		p.WriteString(" }")
	}
}

func (p *printer) literal(l *Literal) {
	switch l.Kind {
	case LitInteger, LitFloat:
		p.WriteString(l.Text)
	case LitString:
		p.WriteString(quoteString(l.Text))
	case LitTrue:
		p.WriteString("true")
	case LitFalse:
		p.WriteString("false")
	case LitNull:
		p.WriteString("null")
	}
}

func (p *printer) mapProjection(m *MapProjection) {
	p.WriteString(quoteName(m.Var) + "{")
	for i, item := range m.Items {
		if i > 0 {
			p.WriteString(", ")
		}
		switch {
		case item.AllProps:
			p.WriteString(".*")
		case item.Prop:
			p.WriteString("." + quoteName(item.Key))
		case item.Value != nil:
			p.WriteString(quoteName(item.Key) + ": ")
			p.expr(item.Value)
		default:
			p.WriteString(quoteName(item.Var))
		}
	}
	p.WriteString("}")
}

func (p *printer) caseExpr(c *Case) {
	p.WriteString("CASE")
	if c.Test != nil {
		p.WriteString(" ")
		p.expr(c.Test)
	}
	for _, w := range c.Whens {
		p.WriteString(" WHEN ")
		p.expr(w.Cond)
		p.WriteString(" THEN ")
		p.expr(w.Result)
	}
	if c.Else != nil {
		p.WriteString(" ELSE ")
		p.expr(c.Else)
	}
	p.WriteString(" END")
}

// isSimpleName reports whether name needs no backticks (ignoring keywords).
func isSimpleName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// quoteName prints a variable, label, type or key, quoting it when it is
// not a plain ASCII identifier or is spelled like a keyword.
func quoteName(name string) string {
	if isSimpleName(name) && !needsQuotes(name) {
		return name
	}
	return backtick(name)
}

func quoteNameOpt(name string) string {
	if name == "" {
		return ""
	}
	return quoteName(name)
}

func backtick(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

func quoteString(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('\'')
	return b.String()
}
