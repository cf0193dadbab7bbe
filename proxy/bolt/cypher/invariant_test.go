package cypher

import "reflect"

// Helpers that walk a parsed statement for the isolation invariant; the
// tests use them on rewritten output, which is re-parsed from text.

type foundNode struct {
	node         *NodePattern
	bareInCreate bool // (x) in CREATE/MERGE: a reference, not a new node
}

// requiresLabel reports whether every node matching e carries label.
func requiresLabel(e *LabelExpr, label string) bool {
	if e == nil {
		return false
	}
	switch e.Op {
	case LabelName:
		return e.Name == label
	case LabelColon, LabelAnd:
		for _, a := range e.Args {
			if requiresLabel(a, label) {
				return true
			}
		}
	}
	return false
}

func nodePatterns(st *Statement) []foundNode {
	var c collector
	c.query(st.Query)
	return c.nodes
}

// allNodePatterns counts the distinct node patterns of a statement by
// reflection, independently of the walkers, so that a construct the
// collector (or the rewriter) does not visit cannot go unnoticed.
func allNodePatterns(st *Statement) int {
	seen := map[*NodePattern]bool{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if v.IsNil() {
				return
			}
			if n, ok := v.Interface().(*NodePattern); ok {
				seen[n] = true
			}
			walk(v.Elem())
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(st.Query))
	return len(seen)
}

type collector struct{ nodes []foundNode }

func (c *collector) query(q *Query) {
	for _, part := range q.Parts {
		c.clauses(part.Clauses)
	}
}

func (c *collector) clauses(cs []Clause) {
	for _, cl := range cs {
		switch cl := cl.(type) {
		case *Match:
			c.parts(cl.Pattern, false)
			c.expr(cl.Where)
		case *Unwind:
			c.expr(cl.List)
		case *With:
			c.projection(&cl.Projection)
			c.expr(cl.Where)
		case *Return:
			c.projection(&cl.Projection)
		case *Create:
			c.parts(cl.Pattern, true)
		case *Merge:
			c.parts([]*PatternPart{cl.Part}, true)
			for _, a := range cl.Actions {
				c.setItems(a.Items)
			}
		case *Set:
			c.setItems(cl.Items)
		case *Delete:
			for _, e := range cl.Exprs {
				c.expr(e)
			}
		case *Foreach:
			c.expr(cl.List)
			c.clauses(cl.Clauses)
		case *CallSubquery:
			c.query(cl.Query)
		case *CallProcedure:
			for _, a := range cl.Args {
				c.expr(a)
			}
			c.expr(cl.Where)
		}
	}
}

func (c *collector) projection(pr *Projection) {
	for _, item := range pr.Items {
		c.expr(item.Expr)
	}
	for _, s := range pr.Order {
		c.expr(s.Expr)
	}
}

func (c *collector) setItems(items []*SetItem) {
	for _, item := range items {
		c.expr(item.Value)
	}
}

func (c *collector) parts(parts []*PatternPart, creating bool) {
	for _, part := range parts {
		c.element(part.Element, creating)
	}
}

func (c *collector) element(e *PatternElement, creating bool) {
	for _, n := range e.Nodes {
		bare := creating && n.Var != "" && n.Labels == nil && n.Props == nil && n.Where == nil
		c.nodes = append(c.nodes, foundNode{node: n, bareInCreate: bare})
		c.expr(n.Props)
		c.expr(n.Where)
	}
	for _, r := range e.Rels {
		c.expr(r.Props)
		c.expr(r.Where)
	}
}

func (c *collector) expr(e Expr) {
	switch e := e.(type) {
	case *Prop:
		c.expr(e.X)
	case *Index:
		c.expr(e.X)
		c.expr(e.Index)
	case *Slice:
		c.expr(e.X)
		c.expr(e.From)
		c.expr(e.To)
	case *Binary:
		c.expr(e.L)
		c.expr(e.R)
	case *Unary:
		c.expr(e.X)
	case *IsNull:
		c.expr(e.X)
	case *LabelPredicate:
		c.expr(e.X)
	case *ListLiteral:
		for _, i := range e.Items {
			c.expr(i)
		}
	case *MapLiteral:
		for _, v := range e.Values {
			c.expr(v)
		}
	case *MapProjection:
		for _, i := range e.Items {
			c.expr(i.Value)
		}
	case *FuncCall:
		for _, a := range e.Args {
			c.expr(a)
		}
	case *Case:
		c.expr(e.Test)
		c.expr(e.Else)
		for _, w := range e.Whens {
			c.expr(w.Cond)
			c.expr(w.Result)
		}
	case *ListComprehension:
		c.expr(e.List)
		c.expr(e.Where)
		c.expr(e.Proj)
	case *Quantifier:
		c.expr(e.List)
		c.expr(e.Where)
	case *Reduce:
		c.expr(e.Init)
		c.expr(e.List)
		c.expr(e.Expr)
	case *PatternComprehension:
		c.element(e.Element, false)
		c.expr(e.Where)
		c.expr(e.Proj)
	case *PatternPredicate:
		c.element(e.Element, false)
	case *Subquery:
		if e.Query != nil {
			c.query(e.Query)
		}
		c.parts(e.Pattern, false)
		c.expr(e.Where)
	}
}
