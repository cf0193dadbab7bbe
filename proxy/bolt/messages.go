package bolt

import (
	"fmt"

	"github.com/tenantgate/tenantgate/proxy/bolt/packstream"
)

// Bolt message tags.
const (
	msgHello     byte = 0x01
	msgGoodbye   byte = 0x02
	msgReset     byte = 0x0F
	msgRun       byte = 0x10
	msgBegin     byte = 0x11
	msgCommit    byte = 0x12
	msgRollback  byte = 0x13
	msgDiscard   byte = 0x2F
	msgPull      byte = 0x3F
	msgTelemetry byte = 0x54
	msgRoute     byte = 0x66
	msgLogon     byte = 0x6A
	msgLogoff    byte = 0x6B

	msgSuccess byte = 0x70
	msgRecord  byte = 0x71
	msgIgnored byte = 0x7E
	msgFailure byte = 0x7F
)

// Neo4j status codes the proxy answers with.
const (
	codeUnauthorized = "Neo.ClientError.Security.Unauthorized"
	codeForbidden    = "Neo.ClientError.Security.Forbidden"
	codeSyntax       = "Neo.ClientError.Statement.SyntaxError"
	codeProtocol     = "Neo.ClientError.Request.Invalid"
)

// tagOf returns the tag of an encoded message (a structure).
func tagOf(msg []byte) (byte, error) {
	if len(msg) < 2 || msg[0]&0xF0 != 0xB0 {
		return 0, fmt.Errorf("bolt: a message must be a structure")
	}
	return msg[1], nil
}

// encode encodes a message; the values the proxy builds always encode.
func encode(tag byte, fields ...any) []byte {
	b, err := packstream.Append(nil, &packstream.Structure{Tag: tag, Fields: fields})
	if err != nil {
		panic(err) // a bug: the proxy built an unencodable value
	}
	return b
}

// failure builds a FAILURE message in the shape version v expects.
func failure(v version, code, message string) []byte {
	meta := &packstream.Map{}
	if v.atLeast(5, 7) {
		meta.Set("neo4j_code", code)
		meta.Set("message", message)
		meta.Set("gql_status", "50N42")
		meta.Set("description", "error: general processing exception - unexpected error. "+message)
	} else {
		meta.Set("code", code)
		meta.Set("message", message)
	}
	return encode(msgFailure, meta)
}

var ignored = encode(msgIgnored)

// mapField returns field i of s as a map, or an error naming the message.
func mapField(s *packstream.Structure, i int, what string) (*packstream.Map, error) {
	if i >= len(s.Fields) {
		return nil, fmt.Errorf("bolt: %s lacks field %d", what, i)
	}
	switch m := s.Fields[i].(type) {
	case *packstream.Map:
		return m, nil
	case nil:
		return &packstream.Map{}, nil
	}
	return nil, fmt.Errorf("bolt: %s field %d is not a map", what, i)
}

// stringEntry returns m[key] when it is a string.
func stringEntry(m *packstream.Map, key string) (string, bool) {
	v, ok := m.Get(key)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

// authKeys are the HELLO and LOGON entries that carry credentials.
var authKeys = []string{"scheme", "principal", "credentials", "realm", "parameters"}

// tokenFrom extracts the JWT from a client's auth map: the credentials of
// the bearer scheme, or the password of the basic scheme.
func tokenFrom(auth *packstream.Map) (string, error) {
	scheme, _ := stringEntry(auth, "scheme")
	switch scheme {
	case "bearer", "basic":
		token, ok := stringEntry(auth, "credentials")
		if !ok || token == "" {
			return "", fmt.Errorf("the %s auth scheme needs the token as credentials", scheme)
		}
		return token, nil
	}
	return "", fmt.Errorf("auth scheme %q is not supported: authenticate with a bearer token (or basic auth with the token as password)", scheme)
}
