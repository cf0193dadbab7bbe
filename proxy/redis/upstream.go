package redis

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// upstreamConfig is where and how the proxy connects to Redis, with its own
// credentials: clients never learn them.
type upstreamConfig struct {
	network, addr  string
	user, password string
	db             int
	tls            *tls.Config
	dialTimeout    time.Duration
}

func parseUpstream(rawURL string) (upstreamConfig, error) {
	o, err := goredis.ParseURL(rawURL)
	if err != nil {
		return upstreamConfig{}, fmt.Errorf("redis.upstream: %w", err)
	}
	cfg := upstreamConfig{
		network: o.Network, addr: o.Addr, user: o.Username, password: o.Password,
		db: o.DB, tls: o.TLSConfig, dialTimeout: 5 * time.Second,
	}
	if cfg.network == "" {
		cfg.network = "tcp"
	}
	if cfg.password != "" && cfg.user == "" {
		cfg.user = "default"
	}
	return cfg, nil
}

// upstream is one connection to Redis: a session's dedicated connection,
// or one of the engine's shared ones (muxLink).
type upstream struct {
	conn    net.Conn
	w       *bufio.Writer
	replies *replyReader
	server  string // the server's version and modules, from its HELLO reply
	id      int64  // the server's client id for this connection (CLIENT ID)
}

// dial connects, authenticates with the proxy's credentials, switches to
// protocol proto and selects the configured database.
func (c upstreamConfig) dial(ctx context.Context, proto int) (*upstream, error) {
	ctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
	defer cancel()
	var conn net.Conn
	var err error
	if c.tls != nil {
		d := tls.Dialer{Config: c.tls}
		conn, err = d.DialContext(ctx, c.network, c.addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, c.network, c.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to the upstream: %w", err)
	}
	u := &upstream{conn: conn, w: bufio.NewWriterSize(conn, ioBufferSize), replies: newReplyReader(conn)}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	hello := []string{"HELLO", strconv.Itoa(proto)}
	if c.password != "" {
		hello = append(hello, "AUTH", c.user, c.password)
	}
	reply, err := u.roundTrip(hello...)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("upstream handshake: %w", err)
	}
	if u.server, u.id, err = serverIdentity(reply); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("upstream handshake: %w", err)
	}
	if c.db != 0 {
		if _, err := u.roundTrip("SELECT", strconv.Itoa(c.db)); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("upstream SELECT %d: %w", c.db, err)
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return u, nil
}

// roundTrip sends one command and returns its raw reply; an error reply is
// returned as an error. Only for the proxy's own commands, before the
// connection serves a client.
func (u *upstream) roundTrip(args ...string) ([]byte, error) {
	buf := u.w.AvailableBuffer()
	buf = append(buf, '*')
	buf = strconv.AppendInt(buf, int64(len(args)), 10)
	buf = append(buf, '\r', '\n')
	for _, a := range args {
		buf = append(buf, '$')
		buf = strconv.AppendInt(buf, int64(len(a)), 10)
		buf = append(buf, '\r', '\n')
		buf = append(buf, a...)
		buf = append(buf, '\r', '\n')
	}
	if _, err := u.w.Write(buf); err != nil {
		return nil, err
	}
	if err := u.w.Flush(); err != nil {
		return nil, err
	}
	reply, err := u.replies.next()
	if err != nil {
		return nil, err
	}
	if reply[0] == '-' {
		return nil, fmt.Errorf("%s", reply[1:len(reply)-2])
	}
	return reply, nil
}

// serverIdentity extracts what decides the command table from a HELLO
// reply, the server version and its loaded modules, and the connection's
// client id.
func serverIdentity(hello []byte) (server string, id int64, err error) {
	v, _, err := parseValue(hello)
	if err != nil {
		return "", 0, err
	}
	f := fields(v)
	version, ok := f["version"]
	if !ok {
		return "", 0, errors.New("HELLO reply without a version")
	}
	id, _ = strconv.ParseInt(string(f["id"].text), 10, 64)
	return string(appendValue(appendValue(nil, version), f["modules"])), id, nil
}
