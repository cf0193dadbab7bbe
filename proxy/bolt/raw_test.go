package bolt

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/proxy/bolt/packstream"
)

// rawClient speaks Bolt message by message, for what drivers do not
// expose: the routing table itself, pipelining, LOGOFF/LOGON.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	in   *messageReader
	v    version
}

func dialRaw(t testing.TB, addr string, offer ...[4]byte) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(handshakeBytes(offer...)); err != nil {
		t.Fatal(err)
	}
	var answer [4]byte
	if _, err := conn.Read(answer[:]); err != nil {
		t.Fatal(err)
	}
	v, _ := parseVersionReply(answer[:])
	return &rawClient{t: t, conn: conn, in: newMessageReader(conn, 1<<20), v: v}
}

func (c *rawClient) send(tag byte, fields ...any) {
	c.t.Helper()
	if _, err := c.conn.Write(appendChunked(nil, encode(tag, fields...))); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) recv() *packstream.Structure {
	c.t.Helper()
	msg, err := c.in.read()
	if err != nil {
		c.t.Fatal(err)
	}
	st, err := packstream.DecodeStructure(msg, packstream.DefaultLimits)
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

// expect receives a message and checks its tag; it returns the metadata.
func (c *rawClient) expect(tag byte) *packstream.Map {
	c.t.Helper()
	st := c.recv()
	if st.Tag != tag {
		c.t.Fatalf("got message 0x%02X %s, want 0x%02X", st.Tag, dump(st.Fields), tag)
	}
	if len(st.Fields) > 0 {
		return mapOf(st.Fields[0])
	}
	return nil
}

func (c *rawClient) logon(token string) {
	c.t.Helper()
	c.send(msgHello, kv("user_agent", "raw/1.0"))
	c.expect(msgSuccess)
	c.send(msgLogon, kv("scheme", "bearer", "credentials", token))
	c.expect(msgSuccess)
}

// kv builds a map from alternating keys and values.
func kv(pairs ...any) *packstream.Map {
	m := &packstream.Map{}
	for i := 0; i < len(pairs); i += 2 {
		m.Set(pairs[i].(string), pairs[i+1])
	}
	return m
}

func mapOf(v any) *packstream.Map {
	if m, ok := v.(*packstream.Map); ok {
		return m
	}
	return &packstream.Map{}
}

func dump(v any) string {
	switch v := v.(type) {
	case *packstream.Map:
		s := "{"
		for i, k := range v.Keys {
			s += fmt.Sprintf("%s: %s, ", k, dump(v.Values[i]))
		}
		return s + "}"
	case []any:
		s := "["
		for _, x := range v {
			s += dump(x) + ", "
		}
		return s + "]"
	case *packstream.Structure:
		return fmt.Sprintf("Struct(0x%02X %s)", v.Tag, dump(v.Fields))
	}
	return fmt.Sprintf("%#v", v)
}
