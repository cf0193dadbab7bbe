package pg

import (
	"github.com/jackc/pgx/v5/pgproto3"
)

// pgError is an error the proxy itself answers with, in PostgreSQL's format.
type pgError struct {
	severity string // ERROR or FATAL
	code     string // SQLSTATE
	message  string
	hint     string
}

func (e *pgError) Error() string { return e.message }

// encode appends e as an ErrorResponse.
func (e *pgError) encode(dst []byte) []byte {
	out, err := (&pgproto3.ErrorResponse{
		Severity: e.severity, SeverityUnlocalized: e.severity, Code: e.code, Message: e.message, Hint: e.hint,
	}).Encode(dst)
	if err != nil { // only on absurd lengths, which proxy messages never have
		return dst
	}
	return out
}

func fatal(code, format string) *pgError {
	return &pgError{severity: "FATAL", code: code, message: format}
}

func errorf(code, message string) *pgError {
	return &pgError{severity: "ERROR", code: code, message: message}
}

// refusalError is what the client is told about a refused statement.
func refusalError(r *Refusal) *pgError {
	return &pgError{severity: "ERROR", code: r.Code, message: r.Error()}
}

// encodeMsg appends a pgproto3 message; the proxy's own messages always encode.
func encodeMsg(dst []byte, m interface{ Encode([]byte) ([]byte, error) }) []byte {
	out, err := m.Encode(dst)
	if err != nil {
		return dst
	}
	return out
}

var (
	msgParseComplete = []byte{'1', 0, 0, 0, 4}
	msgCloseComplete = []byte{'3', 0, 0, 0, 4}
)

func readyForQuery(status byte) []byte { return []byte{'Z', 0, 0, 0, 5, status} }

// encodeNotice appends e as a NoticeResponse.
func (e *pgError) encodeNotice(dst []byte) []byte {
	return encodeMsg(dst, &pgproto3.NoticeResponse{
		Severity: e.severity, SeverityUnlocalized: e.severity, Code: e.code, Message: e.message,
	})
}
