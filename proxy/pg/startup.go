package pg

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tenantgate/tenantgate/policy"
	"github.com/tenantgate/tenantgate/proxy"
)

// startupState is what the handshake established.
type startupState struct {
	rd           *msgReader
	params       map[string]string // allowed parameters the client set, by canonical name
	serverParams map[string]string
}

// Parameters PostgreSQL reports that a client may have set: the client is
// told its own value, as the server would after applying it.
var reportedAs = map[string]string{
	"application_name": "application_name", "client_encoding": "client_encoding", "datestyle": "DateStyle",
	"timezone": "TimeZone", "intervalstyle": "IntervalStyle", "standard_conforming_strings": "standard_conforming_strings",
}

// greeting is AuthenticationOk, the ParameterStatus values, the proxy's
// BackendKeyData and ReadyForQuery.
func (st *startupState) greeting(key cancelKey) []byte {
	out := encodeMsg(nil, &pgproto3.AuthenticationOk{})
	reported := map[string]string{}
	for k, v := range st.serverParams {
		reported[k] = v
	}
	for k, v := range st.params {
		if name, ok := reportedAs[k]; ok {
			reported[name] = v
		}
	}
	names := make([]string, 0, len(reported))
	for k := range reported {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		out = encodeMsg(out, &pgproto3.ParameterStatus{Name: k, Value: reported[k]})
	}
	secret := make([]byte, 4)
	binary.BigEndian.PutUint32(secret, key.secret)
	out = encodeMsg(out, &pgproto3.BackendKeyData{ProcessID: key.pid, SecretKey: secret})
	return append(out, readyForQuery('I')...)
}

// startup runs the handshake up to authentication. It returns nil state
// when the connection ended normally before a session (a CancelRequest).
func (e *Engine) startup(s *proxy.Session) (*startupState, error) {
	var body []byte
	for {
		var err error
		if body, err = readStartup(s.Conn()); err != nil {
			return nil, err
		}
		code := binary.BigEndian.Uint32(body)
		switch code {
		case codeSSL:
			if s.IsTLS() {
				return nil, e.reject(s, fatal("08P01", "tenantgate: SSLRequest on an encrypted connection"))
			}
			if !s.TLSAvailable() {
				if _, err := s.Conn().Write([]byte{'N'}); err != nil {
					return nil, err
				}
				continue
			}
			if _, err := s.Conn().Write([]byte{'S'}); err != nil {
				return nil, err
			}
			if err := s.StartTLS(); err != nil {
				return nil, err
			}
			continue
		case codeGSSENC:
			if _, err := s.Conn().Write([]byte{'N'}); err != nil {
				return nil, err
			}
			continue
		case codeCancel:
			e.cancel(body)
			return nil, nil
		}
		if code>>16 != protoMajor3 {
			return nil, e.reject(s, fatal("0A000", fmt.Sprintf("tenantgate: unsupported frontend protocol %d.%d", code>>16, code&0xffff)))
		}
		break
	}
	if e.opts.RequireTLS && !s.IsTLS() {
		s.Refuse("tls_required", "TLS is required", nil)
		return nil, e.reject(s, fatal("28000", "tenantgate: this server requires TLS (sslmode=require)"))
	}
	params, unrecognized, pe := e.checkStartup(body)
	if pe != nil {
		s.Refuse("startup_parameter", pe.message, nil)
		return nil, e.reject(s, pe)
	}
	var out []byte
	if minor := binary.BigEndian.Uint32(body) & 0xffff; minor > 0 || len(unrecognized) > 0 {
		out = encodeMsg(out, &pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unrecognized})
	}
	out = encodeMsg(out, &pgproto3.AuthenticationCleartextPassword{})
	if _, err := s.Conn().Write(out); err != nil {
		return nil, err
	}

	rd := newMsgReader(s.Conn(), maxPasswordLen)
	typ, _, pw, err := rd.next()
	if err != nil {
		return nil, err
	}
	password, _, ok := cstring(pw)
	if typ != 'p' || !ok {
		return nil, e.reject(s, fatal("08P01", "tenantgate: expected a password message"))
	}
	if _, err := s.Authenticate(s.Context(), password); err != nil {
		return nil, e.reject(s, authError(err))
	}
	rd.max = maxMessageLen

	ctx, cancel := context.WithTimeout(s.Context(), e.opts.PoolTimeout+e.opts.ConnectTimeout)
	defer cancel()
	serverParams, err := e.pool.ServerParams(ctx)
	if err != nil {
		return nil, e.reject(s, fatal("08006", "tenantgate: "+err.Error()))
	}
	return &startupState{rd: rd, params: params, serverParams: serverParams}, nil
}

// checkStartup validates the StartupMessage's parameters.
func (e *Engine) checkStartup(body []byte) (params map[string]string, unrecognized []string, _ *pgError) {
	params = map[string]string{}
	rest := body[4:]
	var user, database string
	for len(rest) > 1 {
		var k, v string
		var ok bool
		if k, rest, ok = cstring(rest); !ok {
			return nil, nil, fatal("08P01", "tenantgate: malformed startup packet")
		}
		if v, rest, ok = cstring(rest); !ok {
			return nil, nil, fatal("08P01", "tenantgate: malformed startup packet")
		}
		key := strings.ToLower(k)
		switch {
		case key == "user":
			user = v
		case key == "database":
			database = v
		case key == "replication":
			if !isFalse(v) {
				return nil, nil, fatal("28000", "tenantgate: replication connections are not allowed")
			}
		case key == "options":
			return nil, nil, fatal("28000", "tenantgate: the startup parameter \"options\" is not allowed (it can set any server setting)")
		case strings.HasPrefix(key, "_pq_."):
			unrecognized = append(unrecognized, k)
		case key == "client_encoding" && !isUTF8(v):
			return nil, nil, fatal("22023", "tenantgate: client_encoding must be UTF8 (the guard parses statements as UTF-8)")
		case key == "standard_conforming_strings" && !strings.EqualFold(v, "on"):
			return nil, nil, fatal("22023", "tenantgate: standard_conforming_strings must be on (the guard parses string literals that way)")
		case e.allowed[key]:
			params[key] = v
		default:
			return nil, nil, fatal("28000", fmt.Sprintf("tenantgate: the startup parameter %q is not allowed", k))
		}
	}
	// The server must read statements as the guard's parser does, whatever
	// the database's or role's defaults say.
	params["client_encoding"] = "UTF8"
	params["standard_conforming_strings"] = "on"
	if user == "" {
		return nil, nil, fatal("28000", "tenantgate: no user name in the startup packet")
	}
	if database == "" {
		database = user // as PostgreSQL does
	}
	if !slices.Contains(e.opts.Databases, database) {
		return nil, nil, fatal("3D000", fmt.Sprintf("tenantgate: database %q is not served here (allowed: %s)", database, strings.Join(e.opts.Databases, ", ")))
	}
	return params, unrecognized, nil
}

func isUTF8(v string) bool {
	switch strings.ToLower(strings.Trim(v, "'\"")) {
	case "utf8", "utf-8", "unicode":
		return true
	}
	return false
}

func isFalse(v string) bool {
	switch strings.ToLower(v) {
	case "false", "off", "no", "0":
		return true
	}
	return false
}

// authError is the FATAL answer to a refused token, naming the reason.
func authError(err error) *pgError {
	reason := policy.ReasonOf(err)
	code := "28P01"
	switch reason {
	case policy.ReasonUnknownTenant, policy.ReasonSuspendedTenant, policy.ReasonTenantMismatch, policy.ReasonRegistryError:
		code = "28000"
	}
	if reason == "" {
		reason = "error"
	}
	return fatal(code, fmt.Sprintf("tenantgate: token refused (%s): %v", reason, err))
}

// reject sends a FATAL error and reports it as the session's end.
func (e *Engine) reject(s *proxy.Session, pe *pgError) error {
	_ = s.Conn().SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = s.Conn().Write(pe.encode(nil))
	return pe
}

// cancelKey is the BackendKeyData the proxy gives a client.
type cancelKey struct{ pid, secret uint32 }

func (e *Engine) register(c *clientSession) cancelKey {
	e.cancelMu.Lock()
	defer e.cancelMu.Unlock()
	for {
		var b [8]byte
		_, _ = rand.Read(b[:])
		k := cancelKey{pid: binary.BigEndian.Uint32(b[:4]) & 0x7fffffff, secret: binary.BigEndian.Uint32(b[4:])}
		if _, taken := e.cancels[k]; !taken && k.pid != 0 {
			e.cancels[k] = c
			return k
		}
	}
}

func (e *Engine) unregister(k cancelKey) {
	e.cancelMu.Lock()
	delete(e.cancels, k)
	e.cancelMu.Unlock()
}

// cancel handles a CancelRequest: a key the proxy issued cancels what that
// client is running on its server connection, nothing else. The server
// connection is not handed to another client until the cancel has been
// delivered, so it cannot hit another client's statement.
func (e *Engine) cancel(body []byte) {
	if len(body) != 12 {
		return
	}
	k := cancelKey{pid: binary.BigEndian.Uint32(body[4:8]), secret: binary.BigEndian.Uint32(body[8:12])}
	e.cancelMu.Lock()
	c := e.cancels[k]
	e.cancelMu.Unlock()
	if c == nil {
		return
	}
	srv := c.server.Load()
	if srv == nil {
		return
	}
	srv.mu.Lock()
	if srv.owner != c || len(srv.pending) == 0 {
		srv.mu.Unlock()
		return
	}
	srv.cancelling++
	srv.mu.Unlock()
	err := e.sendCancel(srv)
	srv.mu.Lock()
	srv.cancelling--
	srv.mu.Unlock()
	srv.maybeRelease()
	if err != nil {
		e.opts.Log.Warn("postgres: cancel request failed", "err", err)
	}
}

// sendCancel sends srv's own cancel key to the server.
func (e *Engine) sendCancel(srv *ServerConn) error {
	cfg := e.pool.config
	d := net.Dialer{Timeout: 5 * time.Second}
	addr := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
	network := "tcp"
	if strings.HasPrefix(cfg.Host, "/") {
		network, addr = "unix", fmt.Sprintf("%s/.s.PGSQL.%d", cfg.Host, cfg.Port)
	}
	conn, err := d.Dial(network, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	msg := make([]byte, 0, 16+len(srv.secret))
	msg = binary.BigEndian.AppendUint32(msg, uint32(12+len(srv.secret)))
	msg = binary.BigEndian.AppendUint32(msg, codeCancel)
	msg = binary.BigEndian.AppendUint32(msg, srv.pid)
	msg = append(msg, srv.secret...)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	// The server closes the connection once it has handled the request.
	var b [1]byte
	_, _ = conn.Read(b[:])
	return nil
}
