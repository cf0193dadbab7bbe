package cypher

import (
	"errors"
	"fmt"
	"maps"
	"strings"
)

// Procedure is an allowlisted procedure. When NodeField is set, the
// procedure returns nodes in that YIELD field, and the rewriter filters
// them to the tenant's label; callers must YIELD that field.
type Procedure struct {
	Name      string // qualified name, e.g. db.index.fulltext.queryNodes
	NodeField string
}

// DefaultProcedures are the procedures allowed when none are configured:
// the index queries knowledge-graph apps use, with their nodes filtered.
var DefaultProcedures = []Procedure{
	{Name: "db.index.fulltext.queryNodes", NodeField: "node"},
	{Name: "db.index.vector.queryNodes", NodeField: "node"},
}

// allowedFunctionNamespaces are the namespaced functions that read no
// graph state. Unqualified names are Neo4j's built-in functions;
// user-defined functions (apoc.*, and any other namespace) are refused.
var allowedFunctionNamespaces = []string{"date.", "datetime.", "localdatetime.", "localtime.", "time.", "duration.", "point.", "vector.similarity."}

// labelVar is the variable of the comprehension that hides the tenant
// label from labels(x).
const labelVar = "__tenantgate_label"

// Rewriter scopes statements to a tenant's label. It is safe for
// concurrent use.
//
// A rewriter made by NewChecker has no label: it parses, refuses what the
// label rewriter refuses (except the reserved prefix, which it has none
// of) and prints, but adds no label, filters no procedure and leaves
// labels(x) alone. It serves a database per tenant, where the database is
// the isolation and the checks only keep statements inside it.
type Rewriter struct {
	template    string // "" for a checker
	reserved    string // lower-cased label prefix no user query may name
	procedures  map[string]Procedure
	allowSchema bool
}

// Option tunes a Rewriter.
type Option func(*Rewriter)

// AllowSchema lets index and constraint commands through (CREATE/DROP
// INDEX|CONSTRAINT, SHOW INDEXES|CONSTRAINTS), for operator tooling; see
// schemaCommand. Other administration commands stay refused.
func AllowSchema(allow bool) Option { return func(r *Rewriter) { r.allowSchema = allow } }

// NewRewriter returns a rewriter for labelTemplate (containing {tenant},
// with a non-empty prefix before it) and the procedure allowlist.
func NewRewriter(labelTemplate string, procedures []Procedure, opts ...Option) (*Rewriter, error) {
	prefix, _, ok := strings.Cut(labelTemplate, "{tenant}")
	if !ok || prefix == "" {
		return nil, fmt.Errorf("label template %q must contain {tenant} after a fixed prefix, e.g. Tenant_{tenant}", labelTemplate)
	}
	r := newRewriter(procedures, opts)
	r.template, r.reserved = labelTemplate, strings.ToLower(prefix)
	return r, nil
}

// NewChecker returns a rewriter without a label (see Rewriter).
func NewChecker(procedures []Procedure, opts ...Option) *Rewriter {
	return newRewriter(procedures, opts)
}

func newRewriter(procedures []Procedure, opts []Option) *Rewriter {
	r := &Rewriter{procedures: map[string]Procedure{}}
	for _, proc := range procedures {
		r.procedures[strings.ToLower(proc.Name)] = proc
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Label is tenant's label; "" for a checker.
func (r *Rewriter) Label(tenant string) string {
	if r.template == "" {
		return ""
	}
	return strings.ReplaceAll(r.template, "{tenant}", tenant)
}

// Rewrite parses query and returns it scoped to tenant. Refusals are *Error.
func (r *Rewriter) Rewrite(query, tenant string) (string, error) {
	st, err := Parse(query)
	if err != nil {
		var ce *Error
		if r.allowSchema && errors.As(err, &ce) && ce.Reason == ReasonAdmin {
			return r.schemaCommand(query, err)
		}
		return "", err
	}
	if err := r.RewriteStatement(st, tenant); err != nil {
		return "", err
	}
	return st.String(), nil
}

// RewriteStatement scopes a parsed statement in place.
func (r *Rewriter) RewriteStatement(st *Statement, tenant string) (err error) {
	w := &scoper{r: r, label: r.Label(tenant), conjunction: st.labelExpressions, columns: st.columns}
	defer func() {
		if rec := recover(); rec != nil {
			b, ok := rec.(errBail)
			if !ok {
				panic(rec)
			}
			err = b.err
		}
	}()
	w.query(st.Query, scope{})
	return nil
}

// scope is the set of variables bound at a point of the query. It decides
// only whether a CREATE or MERGE node pattern introduces a node; node
// patterns in reading positions are labelled whether bound or not, so an
// error here can never widen a match.
type scope map[string]bool

type scoper struct {
	r     *Rewriter
	label string
	// conjunction: the query uses GPM label expressions, so the tenant
	// label is added with & rather than a colon (Neo4j refuses mixing).
	conjunction bool
	columns     map[*ProjectionItem]string
}

func (w *scoper) refuse(reason Reason, format string, args ...any) {
	panic(errBail{refusef(reason, format, args...)})
}

// query scopes q and returns the variables its RETURN exposes.
func (w *scoper) query(q *Query, in scope) scope {
	out := scope{}
	for _, part := range q.Parts {
		sc := w.clauses(part.Clauses, maps.Clone(in))
		if _, ok := part.Clauses[len(part.Clauses)-1].(*Return); ok {
			maps.Copy(out, sc) // the scope after RETURN is its columns
		}
	}
	return out
}

func (w *scoper) clauses(cs []Clause, sc scope) scope {
	for _, c := range cs {
		sc = w.clause(c, sc)
	}
	return sc
}

func (w *scoper) clause(c Clause, sc scope) scope {
	switch c := c.(type) {
	case *Match:
		for _, part := range c.Pattern {
			w.matchPart(part, sc)
		}
		for _, part := range c.Pattern {
			bindPart(part, sc)
		}
		for _, h := range c.Hints {
			w.checkLabel(h.Label)
		}
		c.Where = w.expr(c.Where, sc)
	case *Unwind:
		c.List = w.expr(c.List, sc)
		sc[c.Var] = true
	case *With:
		w.projection(&c.Projection, sc)
		next := projected(&c.Projection, sc)
		c.Where = w.expr(c.Where, mergeScopes(sc, next))
		return next
	case *Return:
		w.keepColumnNames(&c.Projection)
		w.projection(&c.Projection, sc)
		return projected(&c.Projection, sc)
	case *Create:
		for _, part := range c.Pattern {
			w.createPart(part, sc)
		}
	case *Merge:
		w.createPart(c.Part, sc)
		for _, a := range c.Actions {
			w.setItems(a.Items, sc)
		}
	case *Set:
		w.setItems(c.Items, sc)
	case *Remove:
		for _, item := range c.Items {
			w.checkLabels(item.Labels)
		}
	case *Delete:
		for i, e := range c.Exprs {
			c.Exprs[i] = w.expr(e, sc)
		}
	case *Foreach:
		c.List = w.expr(c.List, sc)
		inner := maps.Clone(sc)
		inner[c.Var] = true
		w.clauses(c.Clauses, inner)
	case *CallSubquery:
		w.callSubquery(c, sc)
	case *CallProcedure:
		w.callProcedure(c, sc)
	}
	return sc
}

func mergeScopes(a, b scope) scope {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

// projected is the scope after a WITH or RETURN projection.
func projected(pr *Projection, sc scope) scope {
	next := scope{}
	if pr.Star {
		maps.Copy(next, sc)
	}
	for _, item := range pr.Items {
		switch {
		case item.Alias != "":
			next[item.Alias] = true
		default:
			if v, ok := item.Expr.(*Var); ok {
				next[v.Name] = true
			}
		}
	}
	return next
}

func (w *scoper) projection(pr *Projection, sc scope) {
	for _, item := range pr.Items {
		item.Expr = w.expr(item.Expr, sc)
	}
	orderScope := mergeScopes(sc, projected(pr, sc))
	for _, s := range pr.Order {
		s.Expr = w.expr(s.Expr, orderScope)
	}
	pr.Skip = w.expr(pr.Skip, sc)
	pr.Limit = w.expr(pr.Limit, sc)
}

// keepColumnNames aliases every unaliased RETURN expression with its text
// as written: Neo4j names the column after it, and the printed (and
// rewritten) expression would read differently.
func (w *scoper) keepColumnNames(pr *Projection) {
	for _, item := range pr.Items {
		if _, isVar := item.Expr.(*Var); isVar || item.Alias != "" {
			continue
		}
		if text, ok := w.columns[item]; ok {
			item.Alias = text
		}
	}
}

func (w *scoper) setItems(items []*SetItem, sc scope) {
	for _, item := range items {
		item.Target = w.expr(item.Target, sc)
		item.Value = w.expr(item.Value, sc)
		w.checkLabels(item.Labels)
	}
}

func (w *scoper) callSubquery(c *CallSubquery, sc scope) {
	inner := scope{}
	switch {
	case c.ScopeAll:
		inner = maps.Clone(sc)
	case c.HasScope:
		for _, v := range c.ScopeVars {
			inner[v] = true
		}
	}
	c.TxRows = w.expr(c.TxRows, sc)
	maps.Copy(sc, w.query(c.Query, inner))
	if c.TxReportAs != "" {
		sc[c.TxReportAs] = true
	}
}

func (w *scoper) callProcedure(c *CallProcedure, sc scope) {
	name := strings.Join(c.Name, ".")
	proc, ok := w.r.procedures[strings.ToLower(name)]
	if !ok {
		w.refuse(ReasonProcedure, "procedure %s is not allowed through the proxy", name)
	}
	for i, a := range c.Args {
		c.Args[i] = w.expr(a, sc)
	}
	c.Where = w.expr(c.Where, sc)
	if proc.NodeField != "" && w.label != "" {
		w.filterYieldedNode(c, proc)
	}
	for _, y := range c.Yield {
		sc[y.Bound()] = true
	}
}

// filterYieldedNode makes the procedure's node field carry the tenant
// label: YIELD node ... WHERE node:Label AND (the user's predicate). A
// field yielded under several names is filtered under each.
func (w *scoper) filterYieldedNode(c *CallProcedure, proc Procedure) {
	var filter Expr
	for _, y := range c.Yield {
		if y.Field != proc.NodeField {
			continue
		}
		scoped := &LabelPredicate{X: &Var{Name: y.Bound()}, Labels: &LabelExpr{Op: LabelName, Name: w.label}}
		if filter == nil {
			filter = scoped
		} else {
			filter = &Binary{Op: "AND", L: filter, R: scoped}
		}
	}
	if filter == nil {
		w.refuse(ReasonProcedure, "CALL %s must YIELD %s (by name, not *) so that its nodes can be scoped to the tenant", proc.Name, proc.NodeField)
	}
	if c.Where != nil {
		filter = &Binary{Op: "AND", L: filter, R: c.Where}
	}
	c.Where = filter
}

// matchPart labels every node of a pattern that reads the graph.
func (w *scoper) matchPart(part *PatternPart, sc scope) {
	w.element(part.Element, sc, func(n *NodePattern) { w.addLabel(n) })
}

// createPart labels every node a CREATE or MERGE introduces. A bound
// variable is left alone; redeclaring it with labels or properties is a
// Cypher error, refused here so that a scope mistake cannot create an
// unlabelled node.
func (w *scoper) createPart(part *PatternPart, sc scope) {
	w.element(part.Element, sc, func(n *NodePattern) {
		if n.Var != "" && sc[n.Var] {
			if n.Labels != nil || n.Props != nil || n.Where != nil {
				w.refuse(ReasonRedeclared, "variable %s is already bound; it cannot be redeclared with labels or properties", n.Var)
			}
			return
		}
		w.addLabel(n)
		if n.Var != "" {
			sc[n.Var] = true
		}
	})
	bindPart(part, sc)
}

// element visits the nodes and relationships of e, calling label on each
// node after its own expressions are scoped.
func (w *scoper) element(e *PatternElement, sc scope, label func(*NodePattern)) {
	for i, n := range e.Nodes {
		if i > 0 {
			r := e.Rels[i-1]
			if r.Types != nil {
				w.checkLabelExpr(r.Types, false)
			}
			r.Props = w.expr(r.Props, sc)
			r.Where = w.expr(r.Where, sc)
		}
		if n.Labels != nil {
			w.checkLabelExpr(n.Labels, true)
		}
		n.Props = w.expr(n.Props, sc)
		n.Where = w.expr(n.Where, sc)
		label(n)
	}
}

func bindPart(part *PatternPart, sc scope) {
	if part.Var != "" {
		sc[part.Var] = true
	}
	for _, n := range part.Element.Nodes {
		if n.Var != "" {
			sc[n.Var] = true
		}
	}
	for _, r := range part.Element.Rels {
		if r.Var != "" {
			sc[r.Var] = true
		}
	}
}

func (w *scoper) addLabel(n *NodePattern) {
	if w.label == "" {
		return
	}
	tenant := &LabelExpr{Op: LabelName, Name: w.label}
	switch {
	case n.Labels == nil:
		n.Labels = tenant
	case n.Labels.Op == LabelColon:
		n.Labels.Args = append(n.Labels.Args, tenant)
	case n.Labels.Op == LabelName && !w.conjunction:
		n.Labels = &LabelExpr{Op: LabelColon, Args: []*LabelExpr{n.Labels, tenant}}
	default:
		n.Labels = &LabelExpr{Op: LabelAnd, Args: []*LabelExpr{n.Labels, tenant}}
	}
}

func (w *scoper) checkLabels(labels []string) {
	for _, l := range labels {
		w.checkLabel(l)
	}
}

func (w *scoper) checkLabel(l string) {
	if w.r.reserved != "" && strings.HasPrefix(strings.ToLower(l), w.r.reserved) {
		w.refuse(ReasonReservedLabel, "label %s uses the reserved tenant label prefix", quoteName(l))
	}
}

// checkLabelExpr refuses reserved labels in node label expressions; for
// relationship types (node false) only the names are visited.
func (w *scoper) checkLabelExpr(e *LabelExpr, node bool) {
	if e.Op == LabelName && node {
		w.checkLabel(e.Name)
	}
	for _, a := range e.Args {
		w.checkLabelExpr(a, node)
	}
}

// expr scopes the patterns inside e and returns e, or its replacement.
func (w *scoper) expr(e Expr, sc scope) Expr {
	switch e := e.(type) {
	case nil:
		return nil
	case *Literal, *Param, *Var:
	case *Prop:
		e.X = w.expr(e.X, sc)
	case *Index:
		e.X, e.Index = w.expr(e.X, sc), w.expr(e.Index, sc)
	case *Slice:
		e.X, e.From, e.To = w.expr(e.X, sc), w.expr(e.From, sc), w.expr(e.To, sc)
	case *Binary:
		e.L, e.R = w.expr(e.L, sc), w.expr(e.R, sc)
	case *Unary:
		e.X = w.expr(e.X, sc)
	case *IsNull:
		e.X = w.expr(e.X, sc)
	case *LabelPredicate:
		e.X = w.expr(e.X, sc)
		w.checkLabelExpr(e.Labels, true)
	case *ListLiteral:
		for i, item := range e.Items {
			e.Items[i] = w.expr(item, sc)
		}
	case *MapLiteral:
		for i, v := range e.Values {
			e.Values[i] = w.expr(v, sc)
		}
	case *MapProjection:
		for _, item := range e.Items {
			item.Value = w.expr(item.Value, sc)
		}
	case *FuncCall:
		return w.funcCall(e, sc)
	case *Case:
		e.Test, e.Else = w.expr(e.Test, sc), w.expr(e.Else, sc)
		for _, wh := range e.Whens {
			wh.Cond, wh.Result = w.expr(wh.Cond, sc), w.expr(wh.Result, sc)
		}
	case *ListComprehension:
		e.List = w.expr(e.List, sc)
		inner := mergeScopes(sc, scope{e.Var: true})
		e.Where, e.Proj = w.expr(e.Where, inner), w.expr(e.Proj, inner)
	case *Quantifier:
		e.List = w.expr(e.List, sc)
		e.Where = w.expr(e.Where, mergeScopes(sc, scope{e.Var: true}))
	case *Reduce:
		e.Init, e.List = w.expr(e.Init, sc), w.expr(e.List, sc)
		e.Expr = w.expr(e.Expr, mergeScopes(sc, scope{e.Acc: true, e.Var: true}))
	case *PatternComprehension:
		inner := maps.Clone(sc)
		w.element(e.Element, inner, func(n *NodePattern) { w.addLabel(n) })
		bindPart(&PatternPart{Var: e.PathVar, Element: e.Element}, inner)
		e.Where, e.Proj = w.expr(e.Where, inner), w.expr(e.Proj, inner)
	case *PatternPredicate:
		w.element(e.Element, sc, func(n *NodePattern) { w.addLabel(n) })
	case *Subquery:
		inner := maps.Clone(sc)
		if e.Query != nil {
			w.query(e.Query, inner)
			break
		}
		for _, part := range e.Pattern {
			w.matchPart(part, inner)
			bindPart(part, inner)
		}
		e.Where = w.expr(e.Where, inner)
	default:
		panic(fmt.Sprintf("cypher: unhandled expression %T", e))
	}
	return e
}

func (w *scoper) funcCall(f *FuncCall, sc scope) Expr {
	name := strings.ToLower(strings.Join(f.Name, "."))
	if len(f.Name) > 1 && !hasAnyPrefix(name, allowedFunctionNamespaces) {
		w.refuse(ReasonFunction, "function %s is not allowed through the proxy", strings.Join(f.Name, "."))
	}
	for i, a := range f.Args {
		f.Args[i] = w.expr(a, sc)
	}
	if name == "labels" && len(f.Args) == 1 && w.label != "" {
		// labels(x) without the tenant label.
		return &ListComprehension{
			Var:   labelVar,
			List:  f,
			Where: &Binary{Op: "<>", L: &Var{Name: labelVar}, R: &Literal{Kind: LitString, Text: w.label}},
		}
	}
	return f
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
