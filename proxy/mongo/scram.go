package mongo

import (
	"crypto/md5" //nolint:gosec // SCRAM-SHA-1's password digest is MD5 by MongoDB's definition
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/xdg-go/scram"
	"github.com/xdg-go/stringprep"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// SCRAM mechanisms the proxy uses to authenticate itself to the upstream.
const (
	mechSCRAMSHA256 = "SCRAM-SHA-256"
	mechSCRAMSHA1   = "SCRAM-SHA-1"
)

// upstreamCred is the proxy's own identity on the upstream, from the
// credentials in mongo.upstream. The scram clients are shared by every
// upstream connection: they cache the salted password, so PBKDF2 runs once
// per (salt, iterations) rather than once per connection.
type upstreamCred struct {
	user      string
	source    string // authSource, "admin" by default
	mechanism string // "" until negotiated with the server (see negotiate)
	sha256    *scram.Client
	sha1      *scram.Client
}

// newUpstreamCred prepares both mechanisms the way MongoDB defines them:
// SCRAM-SHA-256 uses the SASLprep'ed password, SCRAM-SHA-1 the hex MD5 of
// "user:mongo:password" (and no SASLprep).
func newUpstreamCred(user, password, source, mechanism string) (*upstreamCred, error) {
	if user == "" {
		return nil, errors.New("mongo.upstream: empty user name")
	}
	switch mechanism {
	case "", mechSCRAMSHA256, mechSCRAMSHA1:
	default:
		return nil, fmt.Errorf("mongo.upstream: authMechanism %q is not supported; use %s or %s", mechanism, mechSCRAMSHA256, mechSCRAMSHA1)
	}
	c := &upstreamCred{user: user, source: source, mechanism: mechanism}
	if c.source == "" {
		c.source = "admin"
	}
	if mechanism != mechSCRAMSHA1 {
		prepped, err := stringprep.SASLprep.Prepare(password)
		if err != nil {
			// Not the error itself: it quotes the offending character.
			return nil, errors.New("mongo.upstream: the password is not valid for SCRAM-SHA-256 (SASLprep refused it)")
		}
		cl, err := scram.SHA256.NewClientUnprepped(user, prepped, "")
		if err != nil {
			return nil, fmt.Errorf("mongo.upstream: %w", err)
		}
		c.sha256 = cl.WithMinIterations(4096)
	}
	if mechanism != mechSCRAMSHA256 {
		sum := md5.Sum([]byte(user + ":mongo:" + password)) //nolint:gosec // see import
		cl, err := scram.SHA1.NewClientUnprepped(user, hex.EncodeToString(sum[:]), "")
		if err != nil {
			return nil, fmt.Errorf("mongo.upstream: %w", err)
		}
		c.sha1 = cl.WithMinIterations(4096)
	}
	return c, nil
}

// negotiate picks the mechanism the way drivers do when none is configured:
// hello with saslSupportedMechs names the user's mechanisms; SCRAM-SHA-256
// when listed, SCRAM-SHA-1 otherwise (the drivers' rule).
func (c *upstreamCred) negotiate(u *upstreamConn) (string, error) {
	if c.mechanism != "" {
		return c.mechanism, nil
	}
	hello, err := u.command("admin",
		bsoncore.AppendInt32Element(nil, "hello", 1),
		bsoncore.AppendStringElement(nil, "saslSupportedMechs", c.source+"."+c.user))
	if err != nil {
		return "", fmt.Errorf("hello: %w", err)
	}
	var mechs []string
	if arr, ok := hello.Lookup("saslSupportedMechs").ArrayOK(); ok {
		vals, _ := arr.Values()
		for _, v := range vals {
			if s, ok := v.StringValueOK(); ok {
				mechs = append(mechs, s)
			}
		}
	}
	if slices.Contains(mechs, mechSCRAMSHA256) {
		return mechSCRAMSHA256, nil
	}
	return mechSCRAMSHA1, nil // listed, or nothing listed: what drivers fall back to
}

// maxSASLSteps bounds the conversation: SCRAM needs two round trips, three
// when the server does not skip the final empty exchange.
const maxSASLSteps = 4

// authenticate runs the SCRAM conversation with mechanism on u. The server
// must prove it knows the password too (its final signature is verified);
// a server that claims success before that fails the authentication.
func (c *upstreamCred) authenticate(u *upstreamConn, mechanism string) error {
	var client *scram.Client
	switch mechanism {
	case mechSCRAMSHA256:
		client = c.sha256
	case mechSCRAMSHA1:
		client = c.sha1
	}
	if client == nil {
		return fmt.Errorf("authMechanism %s is not configured", mechanism)
	}
	conv := client.NewConversation()
	first, err := conv.Step("")
	if err != nil {
		return fmt.Errorf("%s: %w", mechanism, err)
	}
	reply, err := u.saslCommand(c.source,
		bsoncore.AppendInt32Element(nil, "saslStart", 1),
		bsoncore.AppendStringElement(nil, "mechanism", mechanism),
		bsoncore.AppendBinaryElement(nil, "payload", 0, []byte(first)),
		bsoncore.AppendBooleanElement(nil, "autoAuthorize", true),
		bsoncore.AppendDocumentElement(nil, "options", bsoncore.BuildDocumentFromElements(nil,
			bsoncore.AppendBooleanElement(nil, "skipEmptyExchange", true))))
	if err != nil {
		return fmt.Errorf("%s: %w", mechanism, err)
	}
	conversationID := reply.Lookup("conversationId")
	for range maxSASLSteps {
		done, _ := reply.Lookup("done").BooleanOK()
		var response string
		if !conv.Done() {
			_, payload, ok := reply.Lookup("payload").BinaryOK()
			if !ok {
				return fmt.Errorf("%s: the server's reply has no payload", mechanism)
			}
			if response, err = conv.Step(string(payload)); err != nil {
				return fmt.Errorf("%s: %w", mechanism, err)
			}
		}
		if conv.Done() {
			if !conv.Valid() {
				return fmt.Errorf("%s: the server's signature was not verified", mechanism)
			}
			if done {
				return nil
			}
		}
		elems := [][]byte{
			bsoncore.AppendInt32Element(nil, "saslContinue", 1),
			bsoncore.AppendBinaryElement(nil, "payload", 0, []byte(response)),
		}
		if conversationID.Type != 0 {
			elems = slices.Insert(elems, 1, bsoncore.AppendValueElement(nil, "conversationId", conversationID))
		}
		if reply, err = u.saslCommand(c.source, elems...); err != nil {
			return fmt.Errorf("%s: %w", mechanism, err)
		}
		conversationID = reply.Lookup("conversationId")
	}
	return fmt.Errorf("%s: the conversation did not end after %d steps", mechanism, maxSASLSteps)
}

// saslCommand runs one step of the conversation; a refusal is an
// authentication failure, reported with the server's message.
func (u *upstreamConn) saslCommand(db string, elems ...[]byte) (bsoncore.Document, error) {
	reply, err := u.command(db, elems...)
	if err != nil {
		return nil, fmt.Errorf("authentication failed: %w", err)
	}
	return reply, nil
}
