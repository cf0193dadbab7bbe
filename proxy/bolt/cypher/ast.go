package cypher

// The AST keeps no source positions, so that a statement and its printed
// form parse to equal trees.

// Statement is one Cypher statement, optionally prefixed by EXPLAIN or PROFILE.
type Statement struct {
	Prefix string // "", "EXPLAIN" or "PROFILE"
	Query  *Query
	// labelExpressions: some node label uses & | ! or %; Neo4j then
	// refuses the colon conjunction :A:B elsewhere in the statement.
	labelExpressions bool
	// columns is the source text of projection items without an alias:
	// Neo4j names such a RETURN column after the text as written.
	columns map[*ProjectionItem]string
}

// Query is one or more single queries joined by UNION [ALL].
type Query struct {
	Parts    []*SingleQuery
	UnionAll []bool // UnionAll[i] joins Parts[i] and Parts[i+1]
}

// SingleQuery is a sequence of clauses.
type SingleQuery struct {
	Clauses []Clause
}

// Clause is one of the clause types below.
type Clause interface{ clause() }

// Match is MATCH or OPTIONAL MATCH, with planner hints.
type Match struct {
	Optional bool
	Pattern  []*PatternPart
	Hints    []*Hint
	Where    Expr
}

// Hint is USING [TEXT|RANGE|POINT] INDEX [SEEK] v:Label(props), USING SCAN
// v:Label or USING JOIN ON v, ....
type Hint struct {
	Kind  string // "INDEX", "TEXT INDEX", "RANGE INDEX", "POINT INDEX", "SCAN" or "JOIN ON"
	Seek  bool
	Vars  []string // one, or several for JOIN ON
	Label string   // label or relationship type; empty for JOIN ON
	Props []string
}

// Finish is FINISH: the query returns nothing.
type Finish struct{}

// Unwind is UNWIND expr AS var.
type Unwind struct {
	List Expr
	Var  string
}

// With is WITH projection [WHERE].
type With struct {
	Projection
	Where Expr
}

// Return is RETURN projection.
type Return struct {
	Projection
}

// Projection is what WITH and RETURN share.
type Projection struct {
	Distinct    bool
	Star        bool
	Items       []*ProjectionItem
	Order       []*SortItem
	Skip, Limit Expr
}

// ProjectionItem is expr [AS alias].
type ProjectionItem struct {
	Expr  Expr
	Alias string
}

// SortItem is one ORDER BY key.
type SortItem struct {
	Expr Expr
	Desc bool
}

// Create is CREATE pattern.
type Create struct {
	Pattern []*PatternPart
}

// Merge is MERGE part with its ON CREATE / ON MATCH actions.
type Merge struct {
	Part    *PatternPart
	Actions []*MergeAction
}

// MergeAction is ON CREATE SET ... or ON MATCH SET ....
type MergeAction struct {
	OnCreate bool
	Items    []*SetItem
}

// Set is SET item, ....
type Set struct {
	Items []*SetItem
}

// SetOp says what a SetItem does.
type SetOp int

// The SET item forms.
const (
	SetProperty SetOp = iota // x.key = value
	SetReplace               // x = map
	SetMerge                 // x += map
	SetLabels                // x:Label:Label
)

// SetItem is one SET assignment.
type SetItem struct {
	Op     SetOp
	Target Expr // a Prop for SetProperty, a Var otherwise
	Value  Expr
	Labels []string
}

// Remove is REMOVE item, ....
type Remove struct {
	Items []*RemoveItem
}

// RemoveItem removes a property (Prop set) or labels (Var and Labels set).
type RemoveItem struct {
	Prop   *Prop
	Var    string
	Labels []string
}

// Delete is [DETACH] DELETE expr, ....
type Delete struct {
	Detach bool
	Exprs  []Expr
}

// Foreach is FOREACH (var IN list | clauses).
type Foreach struct {
	Var     string
	List    Expr
	Clauses []Clause
}

// CallSubquery is CALL [(scope)] { query } [IN TRANSACTIONS ...].
type CallSubquery struct {
	HasScope   bool     // CALL (...) { }
	ScopeAll   bool     // CALL (*) { }
	ScopeVars  []string // CALL (a, b) { }
	Query      *Query
	InTx       bool
	TxRows     Expr   // OF n ROWS
	TxOnError  string // CONTINUE, BREAK or FAIL
	TxReportAs string // REPORT STATUS AS var
}

// CallProcedure is CALL name(args) [YIELD ... [WHERE ...]].
type CallProcedure struct {
	Name      []string
	Args      []Expr
	NoParens  bool // CALL db.labels (implicit arguments)
	YieldStar bool
	Yield     []*YieldItem
	Where     Expr
}

// YieldItem is field [AS alias].
type YieldItem struct {
	Field string
	Alias string
}

// Bound is the variable the item binds.
func (y *YieldItem) Bound() string {
	if y.Alias != "" {
		return y.Alias
	}
	return y.Field
}

func (*Match) clause()         {}
func (*Finish) clause()        {}
func (*Unwind) clause()        {}
func (*With) clause()          {}
func (*Return) clause()        {}
func (*Create) clause()        {}
func (*Merge) clause()         {}
func (*Set) clause()           {}
func (*Remove) clause()        {}
func (*Delete) clause()        {}
func (*Foreach) clause()       {}
func (*CallSubquery) clause()  {}
func (*CallProcedure) clause() {}

// PatternPart is [var =] element, or a shortest-path form.
type PatternPart struct {
	Var      string
	Shortest string // "", "shortestPath" or "allShortestPaths"
	Element  *PatternElement
}

// PatternElement is a chain: Nodes[0] Rels[0] Nodes[1] ....
type PatternElement struct {
	Nodes []*NodePattern
	Rels  []*RelPattern
}

// NodePattern is (var :labels {props} WHERE pred).
type NodePattern struct {
	Var    string
	Labels *LabelExpr
	Props  Expr // *MapLiteral or *Param
	Where  Expr
}

// RelPattern is -[var :types *range {props} WHERE pred]-> with its arrows.
type RelPattern struct {
	Left, Right bool // <- and ->
	Var         string
	Types       *LabelExpr
	Range       *Range
	Props       Expr
	Where       Expr
}

// Range is the * of a variable-length relationship; empty bounds are "".
type Range struct {
	Min, Max string
	Dots     bool // *1..3 or *..3 rather than *3
}

// LabelOp is the operator of a LabelExpr.
type LabelOp int

// Label expression forms.
const (
	LabelName     LabelOp = iota // Name
	LabelColon                   // :A:B (nodes) or :A|:B (legacy rel types); Args are names
	LabelAnd                     // A&B
	LabelOr                      // A|B
	LabelNot                     // !A
	LabelWildcard                // %
)

// LabelExpr is a label or relationship-type expression.
type LabelExpr struct {
	Op   LabelOp
	Name string
	Args []*LabelExpr
}

// Expr is an expression node.
type Expr interface{ expr() }

// LiteralKind is the type of a Literal.
type LiteralKind int

// Literal kinds.
const (
	LitInteger LiteralKind = iota
	LitFloat
	LitString
	LitTrue
	LitFalse
	LitNull
)

// Literal is a scalar literal. Text is the source spelling of numbers and
// the value of strings.
type Literal struct {
	Kind LiteralKind
	Text string
}

// Param is $name.
type Param struct{ Name string }

// Var is a variable reference.
type Var struct{ Name string }

// Prop is x.key.
type Prop struct {
	X   Expr
	Key string
}

// Index is x[i].
type Index struct{ X, Index Expr }

// Slice is x[from..to]; either bound may be nil.
type Slice struct{ X, From, To Expr }

// Binary is a binary operator: OR XOR AND = <> < > <= >= =~ + - * / % ^ IN
// "STARTS WITH" "ENDS WITH" CONTAINS.
type Binary struct {
	Op   string
	L, R Expr
}

// Unary is NOT, - or +.
type Unary struct {
	Op string
	X  Expr
}

// IsNull is x IS [NOT] NULL.
type IsNull struct {
	X   Expr
	Not bool
}

// LabelPredicate is x:Labels in an expression.
type LabelPredicate struct {
	X      Expr
	Labels *LabelExpr
}

// ListLiteral is [a, b].
type ListLiteral struct{ Items []Expr }

// MapLiteral is {k: v}.
type MapLiteral struct {
	Keys   []string
	Values []Expr
}

// MapProjection is var{.key, .*, key: expr, var}.
type MapProjection struct {
	Var   string
	Items []*MapProjectionItem
}

// MapProjectionItem is one entry: .Key (Prop), .* (AllProps), Key: Value,
// or a variable (Var).
type MapProjectionItem struct {
	Key      string
	Value    Expr
	Prop     bool
	AllProps bool
	Var      string
}

// FuncCall is name(args); Name holds the namespace parts and the name.
type FuncCall struct {
	Name     []string
	Distinct bool
	Star     bool // count(*)
	Args     []Expr
}

// Case is CASE [test] WHEN ... THEN ... [ELSE ...] END.
type Case struct {
	Test  Expr
	Whens []*When
	Else  Expr
}

// When is one WHEN ... THEN ....
type When struct{ Cond, Result Expr }

// ListComprehension is [var IN list WHERE pred | proj].
type ListComprehension struct {
	Var   string
	List  Expr
	Where Expr
	Proj  Expr
}

// Quantifier is all/any/none/single(var IN list WHERE pred).
type Quantifier struct {
	Kind  string
	Var   string
	List  Expr
	Where Expr
}

// Reduce is reduce(acc = init, var IN list | expr).
type Reduce struct {
	Acc  string
	Init Expr
	Var  string
	List Expr
	Expr Expr
}

// PatternComprehension is [path = pattern WHERE pred | proj].
type PatternComprehension struct {
	PathVar string
	Element *PatternElement
	Where   Expr
	Proj    Expr
}

// PatternPredicate is a relationship pattern used as a boolean.
type PatternPredicate struct{ Element *PatternElement }

// Subquery is EXISTS { }, COUNT { } or COLLECT { }, either a full query or
// a pattern with an optional WHERE.
type Subquery struct {
	Kind    string // EXISTS, COUNT or COLLECT
	Query   *Query
	Pattern []*PatternPart
	Where   Expr
}

func (*Literal) expr()              {}
func (*Param) expr()                {}
func (*Var) expr()                  {}
func (*Prop) expr()                 {}
func (*Index) expr()                {}
func (*Slice) expr()                {}
func (*Binary) expr()               {}
func (*Unary) expr()                {}
func (*IsNull) expr()               {}
func (*LabelPredicate) expr()       {}
func (*ListLiteral) expr()          {}
func (*MapLiteral) expr()           {}
func (*MapProjection) expr()        {}
func (*FuncCall) expr()             {}
func (*Case) expr()                 {}
func (*ListComprehension) expr()    {}
func (*Quantifier) expr()           {}
func (*Reduce) expr()               {}
func (*PatternComprehension) expr() {}
func (*PatternPredicate) expr()     {}
func (*Subquery) expr()             {}
