package cypher

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestGeneratedStatements builds random statements from the grammar (far
// deeper nesting than the golden corpus) and checks the isolation
// invariant on each rewrite, plus the round trip.
func TestGeneratedStatements(t *testing.T) {
	r := testRewriter(t)
	g := &generator{rng: rand.New(rand.NewPCG(6, 7))}
	for i := range 3000 {
		q := g.statement()
		if _, err := Parse(q); err != nil {
			t.Fatalf("statement %d does not parse: %v\n%s", i, err, q)
		}
		checkRoundTrip(t, "generated", q)
		out, err := r.Rewrite(q, goldenTenant)
		if err != nil {
			continue // refused (e.g. a bound variable redeclared): nothing reaches Neo4j
		}
		checkScoped(t, fmt.Sprintf("generated %d: %s", i, q), out)
		checkRoundTrip(t, "generated rewrite", out)
	}
}

type generator struct {
	rng   *rand.Rand
	depth int
}

func (g *generator) pick(options ...string) string { return options[g.rng.IntN(len(options))] }

func (g *generator) chance(percent int) bool { return g.rng.IntN(100) < percent }

func (g *generator) variable() string {
	return g.pick("a", "b", "c", "n", "m", "p0", "`odd var`", "end")
}

func (g *generator) node() string {
	var b strings.Builder
	b.WriteString("(")
	if g.chance(70) {
		b.WriteString(g.variable())
	}
	if g.chance(50) {
		b.WriteString(g.pick(":Person", ":A:B", ":A|B", ":!Deleted", ":(A&B)|C", ":%", ":`My Label`", " IS Person"))
	}
	if g.chance(30) {
		b.WriteString(" {id: " + g.expr() + "}")
	}
	if g.chance(10) {
		b.WriteString(" WHERE " + g.expr())
	}
	b.WriteString(")")
	return b.String()
}

func (g *generator) rel() string {
	body := g.pick("", "[r]", "[:KNOWS]", "[r:A|B]", "[*]", "[:R*1..3]", "[r {w: 1}]", "[:!R]")
	switch g.rng.IntN(3) {
	case 0:
		return "-" + body + "->"
	case 1:
		return "<-" + body + "-"
	}
	return "-" + body + "-"
}

func (g *generator) chain(maxRels int) string { return g.chainOf(0, maxRels) }

func (g *generator) chainOf(minRels, maxRels int) string {
	var b strings.Builder
	b.WriteString(g.node())
	for range minRels + g.rng.IntN(maxRels-minRels+1) {
		b.WriteString(g.rel() + g.node())
	}
	return b.String()
}

func (g *generator) pattern() string {
	parts := []string{g.chain(3)}
	if g.chance(20) {
		parts = append(parts, g.chain(2))
	}
	if g.chance(15) {
		parts[0] = "p = " + g.pick("shortestPath", "allShortestPaths") + "(" + g.node() + "-[*]-" + g.node() + ")"
	}
	return strings.Join(parts, ", ")
}

func (g *generator) expr() string {
	g.depth++
	defer func() { g.depth-- }()
	if g.depth > 4 {
		return g.pick("1", "'s'", "$param", "a.name", "null", "true")
	}
	switch g.rng.IntN(16) {
	case 0:
		return "(" + g.expr() + ")" + g.pick(" = ", " <> ", " < ", " + ", " AND ", " OR ", " IN ", " STARTS WITH ") + "(" + g.expr() + ")"
	case 1:
		return "NOT (" + g.expr() + ")"
	case 2:
		return "EXISTS { MATCH " + g.pattern() + " WHERE " + g.expr() + " }"
	case 3:
		return "COUNT { " + g.chain(2) + " }"
	case 4:
		return "COLLECT { MATCH " + g.pattern() + " RETURN " + g.variable() + " }"
	case 5:
		return "[" + g.chainOf(1, 2) + " WHERE " + g.expr() + " | " + g.expr() + "]"
	case 6:
		return "[x IN " + g.expr() + " WHERE " + g.expr() + " | " + g.expr() + "]"
	case 7:
		return "CASE WHEN " + g.expr() + " THEN " + g.expr() + " ELSE " + g.expr() + " END"
	case 8:
		return g.node() + g.rel() + g.node()
	case 9:
		return "labels(" + g.variable() + ")"
	case 10:
		return "{k: " + g.expr() + ", l: [" + g.expr() + ", " + g.expr() + "]}"
	case 11:
		return g.variable() + "{.name, x: " + g.expr() + "}"
	case 12:
		return "size(" + g.expr() + ")"
	case 13:
		return "all(x IN " + g.expr() + " WHERE " + g.expr() + ")"
	case 14:
		return g.pick(g.variable()+":Person", g.variable()+" IS Person", "("+g.variable()+":A|B)")
	}
	return g.pick("1", "2.5", "'text'", "$param", g.variable(), g.variable()+".name", "null")
}

func (g *generator) clause() string {
	g.depth++
	defer func() { g.depth-- }()
	switch g.rng.IntN(13) {
	case 0, 1:
		return g.pick("MATCH ", "OPTIONAL MATCH ") + g.pattern() + g.pick("", " USING SCAN a:Person", " USING INDEX n:Person(name)") + " WHERE " + g.expr()
	case 2:
		return "WITH " + g.pick("*", g.variable(), g.variable()+", "+g.expr()+" AS x", "count(*) AS c")
	case 3:
		return "UNWIND " + g.expr() + " AS " + g.variable()
	case 4:
		return "CREATE " + g.chain(2)
	case 5:
		return "MERGE " + g.chain(1) + " ON CREATE SET " + g.variable() + ".x = " + g.expr()
	case 6:
		return "SET " + g.variable() + g.pick(".x = 1", " += {a: 1}", ":Label")
	case 7:
		return "DETACH DELETE " + g.variable()
	case 8:
		if g.depth > 2 {
			return "MATCH " + g.pattern()
		}
		return "CALL " + g.pick("", "(*) ", "(a) ") + "{ " + g.clause() + " RETURN " + g.variable() + " AS " + g.pick("r1", "r2") + " }"
	case 9:
		if g.depth > 2 {
			return "MATCH " + g.pattern()
		}
		return "FOREACH (x IN " + g.expr() + " | " + g.pick("CREATE "+g.chain(1), "MERGE "+g.chain(1), "SET x.y = 1") + ")"
	case 10:
		return "CALL db.index.fulltext.queryNodes('i', $q) YIELD node" + g.pick("", " AS a", ", score WHERE "+g.expr())
	case 11:
		return "REMOVE " + g.variable() + g.pick(".x", ":Old")
	}
	return "MATCH " + g.pattern()
}

func (g *generator) statement() string {
	var parts []string
	for range 1 + g.rng.IntN(4) {
		parts = append(parts, g.clause())
	}
	parts = append(parts, "RETURN "+g.pick("*", g.variable(), g.expr(), g.expr()+" AS out LIMIT 5"))
	q := strings.Join(parts, " ")
	if g.chance(10) {
		q += " UNION ALL " + g.clause() + " RETURN 1 AS one"
	}
	return q
}
