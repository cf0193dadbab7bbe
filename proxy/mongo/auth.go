package mongo

import (
	"bytes"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// SASL mechanisms the proxy accepts. Both carry the JWT: PLAIN as the
// password, MONGODB-OIDC as the jwt of its one-step payload.
const (
	mechPlain = "PLAIN"
	mechOIDC  = "MONGODB-OIDC"
)

var supportedMechs = []string{mechPlain, mechOIDC}

// oidcReauthGrace is how long a MONGODB-OIDC session whose token expired may
// take to re-authenticate before it is closed. Until then every command is
// answered with ReauthenticationRequired.
const oidcReauthGrace = time.Minute

// hello answers hello/isMaster, running a speculativeAuthenticate first
// when the client sent one (drivers do for MONGODB-OIDC with a token).
func (c *clientSession) hello(req bsoncore.Document, legacy bool) bsoncore.Document {
	reply := c.e.facts.helloReply(req, legacy, c.s.ID(), supportedMechs)
	spec, ok := req.Lookup("speculativeAuthenticate").DocumentOK()
	if !ok {
		return reply
	}
	db, _ := spec.Lookup("db").StringValueOK()
	if res := c.saslStart(spec, db); okOf(res) {
		// The client re-runs saslStart itself when this field is missing.
		return withElement(reply, bsoncore.AppendDocumentElement(nil, "speculativeAuthenticate", res))
	}
	return reply
}

// saslStart runs a one-step SASL conversation and answers it.
func (c *clientSession) saslStart(body bsoncore.Document, db string) bsoncore.Document {
	mech, _ := body.Lookup("mechanism").StringValueOK()
	if db != "$external" {
		return c.authFailed("authenticate on the $external database")
	}
	_, payload, ok := body.Lookup("payload").BinaryOK()
	if !ok {
		return c.authFailed("saslStart needs a binary payload")
	}
	var token string
	switch mech {
	case mechPlain:
		token, ok = plainPassword(payload)
		if !ok {
			return c.authFailed("malformed PLAIN payload")
		}
	case mechOIDC:
		doc := bsoncore.Document(payload)
		if validateDepth(doc, 0) != nil {
			return c.authFailed("malformed MONGODB-OIDC payload")
		}
		if token, ok = doc.Lookup("jwt").StringValueOK(); !ok {
			return c.authFailed("MONGODB-OIDC: only the machine flow with a token is supported")
		}
	default:
		return c.authFailed("mechanism " + mech + " is not supported; use PLAIN (password = token) or MONGODB-OIDC")
	}
	if mech == mechOIDC {
		// OIDC drivers answer ReauthenticationRequired by fetching a fresh
		// token and authenticating again on the same connection, so an
		// expired token need not cost the connection (and its cursors).
		c.s.DeferExpiry(oidcReauthGrace)
	}
	if _, err := c.s.Authenticate(c.s.Context(), token); err != nil {
		// Session.Authenticate counted and audited the failure.
		return (&CommandError{Code: codeAuthenticationFailed, Msg: "tenantgate: authentication failed: " + err.Error()}).Document()
	}
	idx, d := bsoncore.AppendDocumentStart(nil)
	d = bsoncore.AppendInt32Element(d, "conversationId", 1)
	d = bsoncore.AppendBooleanElement(d, "done", true)
	d = bsoncore.AppendBinaryElement(d, "payload", 0, nil)
	d = bsoncore.AppendDoubleElement(d, "ok", 1)
	d, _ = bsoncore.AppendDocumentEnd(d, idx)
	return d
}

func (c *clientSession) authFailed(msg string) bsoncore.Document {
	cerr := &CommandError{Code: codeAuthenticationFailed, Reason: reasonMalformed, Msg: "tenantgate: " + msg}
	c.s.Refuse(cerr.Reason, cerr.Msg, nil)
	return cerr.Document()
}

// plainPassword extracts the password of a PLAIN message
// "authzid NUL authcid NUL password" (RFC 4616). The user names are not
// used: the token alone proves the tenant.
func plainPassword(payload []byte) (string, bool) {
	parts := bytes.SplitN(payload, []byte{0}, 3)
	if len(parts) != 3 || len(parts[2]) == 0 || bytes.IndexByte(parts[2], 0) >= 0 {
		return "", false
	}
	return string(parts[2]), true
}
