package mongo

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// upstreamConfig is where and how the proxy connects to the datastore.
type upstreamConfig struct {
	addr string
	tls  *tls.Config   // nil: plaintext
	cred *upstreamCred // nil: no authentication
}

// parseUpstream accepts
// mongodb://[user:password@]host[:port][/][?tls=true&authSource=admin&authMechanism=SCRAM-SHA-256].
// With credentials the proxy authenticates every upstream connection with
// SCRAM (SHA-256 or SHA-1, negotiated when authMechanism is not given).
// Errors never quote the URL: it may hold the password.
func parseUpstream(raw string) (upstreamConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return upstreamConfig{}, errors.New("mongo.upstream: not a URL (percent-encode reserved characters in the user name and password)")
	}
	if u.Scheme != "mongodb" {
		return upstreamConfig{}, fmt.Errorf("mongo.upstream: scheme %q is not supported; use mongodb://host:port", u.Scheme)
	}
	if u.Host == "" || strings.Contains(u.Host, ",") {
		return upstreamConfig{}, errors.New("mongo.upstream: exactly one host is required")
	}
	if u.Path != "" && u.Path != "/" {
		return upstreamConfig{}, errors.New("mongo.upstream: a database in the URL is not used (use authSource for the credentials' database); remove it")
	}
	cfg := upstreamConfig{addr: u.Host}
	if u.Port() == "" {
		cfg.addr = net.JoinHostPort(u.Hostname(), "27017")
	}
	var source, mechanism string
	var sourceSet bool
	for key, vals := range u.Query() {
		v := vals[len(vals)-1]
		switch strings.ToLower(key) {
		case "tls", "ssl":
			if strings.ToLower(v) == "true" {
				cfg.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
			}
		case "directconnection":
		case "authsource":
			source, sourceSet = v, true
		case "authmechanism":
			mechanism = strings.ToUpper(v)
		default:
			return upstreamConfig{}, fmt.Errorf("mongo.upstream: option %q is not supported", key)
		}
	}
	if u.User == nil {
		if sourceSet || mechanism != "" {
			return upstreamConfig{}, errors.New("mongo.upstream: authSource/authMechanism given without credentials (mongodb://user:password@host)")
		}
		return cfg, nil
	}
	password, ok := u.User.Password()
	if !ok {
		return upstreamConfig{}, errors.New("mongo.upstream: a user without a password; SCRAM needs both (mongodb://user:password@host)")
	}
	if sourceSet && (source == "" || source == "$external") {
		return upstreamConfig{}, fmt.Errorf("mongo.upstream: authSource %q cannot hold SCRAM users", source)
	}
	if cfg.cred, err = newUpstreamCred(u.User.Username(), password, source, mechanism); err != nil {
		return upstreamConfig{}, err
	}
	return cfg, nil
}

// upstreamConn is one connection of the proxy to the datastore. It carries
// one request at a time.
type upstreamConn struct {
	conn   net.Conn
	r      *bufio.Reader
	nextID int32
	out    []byte
	in     []byte
	max    int
}

const dialTimeout = 10 * time.Second

// dial connects and, with credentials, authenticates with the negotiated
// mechanism (see Engine.negotiateUpstream).
func (c upstreamConfig) dial(ctx context.Context, max int) (*upstreamConn, error) {
	u, err := c.connect(ctx, max)
	if err != nil {
		return nil, err
	}
	if c.cred == nil {
		return u, nil
	}
	if err := u.authenticate(c.cred, c.cred.mechanism); err != nil {
		_ = u.Close()
		return nil, err
	}
	return u, nil
}

// authenticate runs the SCRAM conversation under a deadline.
func (u *upstreamConn) authenticate(cred *upstreamCred, mechanism string) error {
	_ = u.conn.SetDeadline(time.Now().Add(dialTimeout))
	if err := cred.authenticate(u, mechanism); err != nil {
		return fmt.Errorf("authenticate to the upstream as %q (authSource %s): %w", cred.user, cred.source, err)
	}
	return u.conn.SetDeadline(time.Time{})
}

// connect opens a connection, unauthenticated.
func (c upstreamConfig) connect(ctx context.Context, max int) (*upstreamConn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	var conn net.Conn
	var err error
	if c.tls != nil {
		td := tls.Dialer{NetDialer: &d, Config: c.tls}
		conn, err = td.DialContext(ctx, "tcp", c.addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", c.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to the upstream: %w", err)
	}
	return &upstreamConn{conn: conn, r: bufio.NewReaderSize(conn, readBufferSize), max: max}, nil
}

func (u *upstreamConn) Close() error { return u.conn.Close() }

// roundTrip sends m and returns the reply. The reply points into a buffer
// reused by the next round trip.
func (u *upstreamConn) roundTrip(m *OpMsg) (*OpMsg, error) {
	u.nextID++
	id := u.nextID
	u.out = appendOpMsg(u.out[:0], id, 0, m)
	if _, err := u.conn.Write(u.out); err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	h, msg, err := readMessage(u.r, u.in, u.max)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	u.in = msg
	if h.OpCode != opMsg || h.ResponseTo != id {
		return nil, fmt.Errorf("upstream: unexpected reply (opcode %d, responseTo %d, want %d)", h.OpCode, h.ResponseTo, id)
	}
	reply, err := parseOpMsg(msg)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	if reply.MoreToCome() {
		return nil, errors.New("upstream: replied with moreToCome, which was not requested")
	}
	return reply, nil
}

// command runs a simple command (for the proxy's own use) on db.
func (u *upstreamConn) command(db string, elems ...[]byte) (bsoncore.Document, error) {
	elems = append(elems, bsoncore.AppendStringElement(nil, "$db", db))
	reply, err := u.roundTrip(&OpMsg{Body: bsoncore.BuildDocument(nil, elems...)})
	if err != nil {
		return nil, err
	}
	if !okOf(reply.Body) {
		msg, _ := reply.Body.Lookup("errmsg").StringValueOK()
		return nil, fmt.Errorf("upstream: %s", msg)
	}
	return append(bsoncore.Document(nil), reply.Body...), nil
}

// okOf reads a reply's ok field, whatever its numeric type.
func okOf(reply bsoncore.Document) bool {
	v := reply.Lookup("ok")
	if f, ok := v.DoubleOK(); ok {
		return f == 1
	}
	n, ok := v.AsInt64OK()
	return ok && n == 1
}
