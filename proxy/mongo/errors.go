package mongo

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// MongoDB error codes the proxy answers with.
const (
	codeFailedToParse        = 9
	codeUnauthorized         = 13
	codeAuthenticationFailed = 18
	codeIllegalOperation     = 20
	codeCursorNotFound       = 43
	codeCommandNotFound      = 59
	codeInvalidNamespace     = 73
	codeProtocolError        = 17
	codeHostUnreachable      = 6

	codeReauthenticationRequired = 391
)

var codeNames = map[int32]string{
	codeFailedToParse:            "FailedToParse",
	codeUnauthorized:             "Unauthorized",
	codeReauthenticationRequired: "ReauthenticationRequired",
	codeAuthenticationFailed:     "AuthenticationFailed",
	codeIllegalOperation:         "IllegalOperation",
	codeCursorNotFound:           "CursorNotFound",
	codeCommandNotFound:          "CommandNotFound",
	codeInvalidNamespace:         "InvalidNamespace",
	codeProtocolError:            "ProtocolError",
	codeHostUnreachable:          "HostUnreachable",
}

// CommandError is a refusal answered in MongoDB's own error format. Reason
// is the short, stable code counted in metrics and audit.
type CommandError struct {
	Code   int32
	Reason string
	Msg    string
}

func (e *CommandError) Error() string { return e.Msg }

func refuse(code int32, reason, format string, args ...any) *CommandError {
	return &CommandError{Code: code, Reason: reason, Msg: "tenantgate: " + fmt.Sprintf(format, args...)}
}

// Refusal reasons (metric label values) of this engine.
const (
	reasonUnknownCommand = "unknown_command"
	reasonForbidden      = "forbidden_command"
	reasonNamespace      = "forbidden_namespace"
	reasonTenantField    = "tenant_field"
	reasonCursor         = "foreign_cursor"
	reasonMalformed      = "malformed"
	reasonUnsupported    = "unsupported"
)

// Document encodes the error as a command reply: {ok: 0, errmsg, code, codeName}.
func (e *CommandError) Document() bsoncore.Document {
	idx, d := bsoncore.AppendDocumentStart(nil)
	d = bsoncore.AppendDoubleElement(d, "ok", 0)
	d = bsoncore.AppendStringElement(d, "errmsg", e.Msg)
	d = bsoncore.AppendInt32Element(d, "code", e.Code)
	d = bsoncore.AppendStringElement(d, "codeName", codeNames[e.Code])
	d, _ = bsoncore.AppendDocumentEnd(d, idx)
	return d
}
