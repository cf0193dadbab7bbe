package cypher

import "fmt"

// Reason is a short, stable code for why a statement was refused; it is
// used as a metric label value.
type Reason string

// Refusal reasons.
const (
	ReasonSyntax        Reason = "cypher_syntax"
	ReasonReservedLabel Reason = "cypher_reserved_label"
	ReasonDynamicLabel  Reason = "cypher_dynamic_label"
	ReasonLoadCSV       Reason = "cypher_load_csv"
	ReasonUse           Reason = "cypher_use"
	ReasonAdmin         Reason = "cypher_admin"
	ReasonProcedure     Reason = "cypher_procedure"
	ReasonFunction      Reason = "cypher_function"
	ReasonRedeclared    Reason = "cypher_redeclared_variable"
)

// Error is a refused statement: unparsable, or outside what can be scoped.
type Error struct {
	Reason  Reason
	Message string
}

func (e *Error) Error() string { return e.Message }

// IsSyntax reports whether the statement could not be parsed, as opposed to
// parsed and refused.
func (e *Error) IsSyntax() bool { return e.Reason == ReasonSyntax }

func syntaxErrorf(pos int, format string, args ...any) *Error {
	return &Error{Reason: ReasonSyntax, Message: fmt.Sprintf("invalid or unsupported Cypher at offset %d: ", pos) + fmt.Sprintf(format, args...)}
}

func refusef(reason Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}
