package mongo

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// rawClient speaks the wire protocol by hand, to send what drivers never do.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	id   int32
}

func dialRaw(t *testing.T, p *testProxy) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *rawClient) send(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// command sends body as an OP_MSG with flags and returns the reply body.
func (c *rawClient) command(flags uint32, body bsoncore.Document) bsoncore.Document {
	c.t.Helper()
	c.id++
	c.send(appendOpMsg(nil, c.id, 0, &OpMsg{Flags: flags, Body: body}))
	return c.reply(opMsg)
}

// reply reads one message of opcode and returns its (first) document.
func (c *rawClient) reply(opcode int32) bsoncore.Document {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, msg, err := readMessage(c.r, nil, 1<<24)
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	if h.OpCode != opcode {
		c.t.Fatalf("reply opcode %d, want %d", h.OpCode, opcode)
	}
	if opcode == opReply {
		return bsoncore.Document(msg[headerLen+20:])
	}
	m, err := parseOpMsg(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	if m.Flags != 0 {
		c.t.Fatalf("reply flags %#x: the proxy must not grant exhaust or add checksums", m.Flags)
	}
	return m.Body
}

// closed reports whether the proxy closed the connection.
func (c *rawClient) closed() bool {
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.r.ReadByte()
	return err != nil
}

func cmd(name string, v any, db string, more ...[]byte) bsoncore.Document {
	first, err := bson.Marshal(bson.D{{Key: name, Value: v}})
	if err != nil {
		panic(err)
	}
	elems := [][]byte{bsoncore.Document(first)[4 : len(first)-1]}
	elems = append(elems, more...)
	elems = append(elems, bsoncore.AppendStringElement(nil, "$db", db))
	return doc(elems...)
}

func codeOf(reply bsoncore.Document) int32 {
	n, _ := reply.Lookup("code").AsInt64OK()
	return int32(n)
}

func TestHandshakeAndPreAuth(t *testing.T) {
	p := startProxy(t, Options{})
	c := dialRaw(t, p)

	hello := c.command(flagExhaustAllowed, cmd("hello", 1, "admin",
		bsoncore.BuildArrayElement(nil, "compression", bsoncore.Value{Type: bsoncore.TypeString, Data: bsoncore.AppendString(nil, "zstd")}),
		bsoncore.AppendStringElement(nil, "saslSupportedMechs", "$external.app")))
	if msg, _ := hello.Lookup("msg").StringValueOK(); msg != "isdbgrid" {
		t.Fatalf("hello msg = %q in %v", msg, hello)
	}
	for _, absent := range []string{"compression", "hosts", "setName", "topologyVersion"} {
		if hello.Lookup(absent).Type != 0 {
			t.Fatalf("hello carries %s: %v", absent, hello)
		}
	}
	if v, _ := hello.Lookup("maxWireVersion").AsInt64OK(); v < 8 {
		t.Fatalf("maxWireVersion %d", v)
	}
	if mechs := hello.Lookup("saslSupportedMechs"); mechs.Type != bsoncore.TypeArray {
		t.Fatalf("no saslSupportedMechs: %v", hello)
	}

	for _, name := range []string{"ping", "buildInfo", "endSessions"} {
		var v any = 1
		if name == "endSessions" {
			v = bson.A{}
		}
		if r := c.command(0, cmd(name, v, "admin")); !okOf(r) {
			t.Fatalf("%s before auth: %v", name, r)
		}
	}
	for _, body := range []bsoncore.Document{
		cmd("find", "docs", "app"),
		cmd("listDatabases", 1, "admin"),
		cmd("insert", "docs", "app"),
	} {
		if r := c.command(0, body); codeOf(r) != codeUnauthorized {
			t.Fatalf("%s before auth answered %v", firstKey(body), r)
		}
	}

	// A bad token is refused; the good one authenticates.
	sasl := func(tok string) bsoncore.Document {
		return c.command(0, cmd("saslStart", 1, "$external",
			bsoncore.AppendStringElement(nil, "mechanism", "PLAIN"),
			bsoncore.AppendBinaryElement(nil, "payload", 0, []byte("\x00app\x00"+tok))))
	}
	if r := sasl("not-a-jwt"); codeOf(r) != codeAuthenticationFailed {
		t.Fatalf("bad token: %v", r)
	}
	if r := sasl(token(t, "acme")); !okOf(r) {
		t.Fatalf("PLAIN: %v", r)
	}
	if r := c.command(0, cmd("find", "docs", uniqueDB())); !okOf(r) {
		t.Fatalf("find after auth: %v", r)
	}
}

func TestLegacyOpQueryHandshake(t *testing.T) {
	p := startProxy(t, Options{})
	c := dialRaw(t, p)
	query := func(coll string, q bsoncore.Document) []byte {
		b := appendHeader(nil, MessageHeader{RequestID: 9, OpCode: opQuery})
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = append(append(b, coll...), 0)
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint32(b, 0xffffffff)
		b = append(b, q...)
		binary.LittleEndian.PutUint32(b, uint32(len(b)))
		return b
	}
	c.send(query("admin.$cmd", doc(bsoncore.AppendInt32Element(nil, "isMaster", 1))))
	r := c.reply(opReply)
	if ok, _ := r.Lookup("ismaster").BooleanOK(); !ok {
		t.Fatalf("legacy isMaster: %v", r)
	}
	c.send(query("app.docs", doc(bsoncore.AppendInt32Element(nil, "find", 1))))
	if r := c.reply(opReply); r.Lookup("$err").Type == 0 {
		t.Fatalf("OP_QUERY find not refused: %v", r)
	}
}

// TestMalformedFrames: a broken message gets an error (or, when the stream
// cannot be framed, a closed connection) and the proxy keeps serving.
func TestMalformedFrames(t *testing.T) {
	p := startProxy(t, Options{})

	c := dialRaw(t, p)
	c.send(rawMsg(1, append(binary.LittleEndian.AppendUint32(nil, 0), 0, 5, 0, 0, 0, 3, 'x', 0)))
	if r := c.reply(opMsg); codeOf(r) != codeFailedToParse {
		t.Fatalf("bad BSON: %v", r)
	}
	if r := c.command(0, cmd("ping", 1, "admin")); !okOf(r) {
		t.Fatalf("session did not survive a bad document: %v", r)
	}
	c.send(withChecksum(rawMsg(2, append(binary.LittleEndian.AppendUint32(nil, 0), append([]byte{0}, pingDoc()...)...))))
	if r := c.reply(opMsg); !okOf(r) {
		t.Fatalf("checksummed ping: %v", r)
	}

	for name, frame := range map[string][]byte{
		"length over max":   appendHeader(nil, MessageHeader{Length: 1 << 30, OpCode: opMsg}),
		"length negative":   appendHeader(nil, MessageHeader{Length: -5, OpCode: opMsg}),
		"large before auth": appendHeader(nil, MessageHeader{Length: preAuthMaxMessage + 1, OpCode: opMsg}),
		"OP_COMPRESSED":     append(appendHeader(nil, MessageHeader{Length: 26, OpCode: opCompressed}), make([]byte, 10)...),
		"OP_INSERT":         append(appendHeader(nil, MessageHeader{Length: 26, OpCode: 2002}), make([]byte, 10)...),
	} {
		c := dialRaw(t, p)
		c.send(frame)
		if name == "OP_COMPRESSED" {
			if r := c.reply(opMsg); codeOf(r) != codeProtocolError {
				t.Fatalf("%s: %v", name, r)
			}
		}
		if !c.closed() {
			t.Fatalf("%s: connection left open", name)
		}
	}
	if r := dialRaw(t, p).command(0, cmd("ping", 1, "admin")); !okOf(r) {
		t.Fatalf("proxy did not survive: %v", r)
	}
}

// TestMoreToCome: an unacknowledged write gets no reply and still lands.
func TestMoreToCome(t *testing.T) {
	p := startProxy(t, Options{Mode: ModeField})
	c := dialRaw(t, p)
	if r := c.command(0, cmd("saslStart", 1, "$external", bsoncore.AppendStringElement(nil, "mechanism", "PLAIN"),
		bsoncore.AppendBinaryElement(nil, "payload", 0, []byte("\x00\x00"+token(t, "acme"))))); !okOf(r) {
		t.Fatal(r)
	}
	db := uniqueDB()
	c.id++
	c.send(appendOpMsg(nil, c.id, 0, &OpMsg{Flags: flagMoreToCome, Body: cmd("insert", "docs", db,
		bsoncore.BuildArrayElement(nil, "documents", bsoncore.Value{Type: bsoncore.TypeEmbeddedDocument, Data: doc(bsoncore.AppendStringElement(nil, "_id", "w0"))}),
		bsoncore.BuildDocumentElement(nil, "writeConcern", bsoncore.AppendInt32Element(nil, "w", 0)))}))
	r := c.command(0, cmd("count", "docs", db))
	if n, _ := r.Lookup("n").AsInt64OK(); n != 1 {
		t.Fatalf("count after unacknowledged insert: %v", r)
	}
}

// TestSpeculativeAuthenticate: a hello carrying a MONGODB-OIDC saslStart
// authenticates the connection in the same round trip.
func TestSpeculativeAuthenticate(t *testing.T) {
	p := startProxy(t, Options{})
	c := dialRaw(t, p)
	payload := doc(bsoncore.AppendStringElement(nil, "jwt", token(t, "acme")))
	spec := doc(bsoncore.AppendInt32Element(nil, "saslStart", 1), bsoncore.AppendStringElement(nil, "mechanism", "MONGODB-OIDC"),
		bsoncore.AppendBinaryElement(nil, "payload", 0, payload), bsoncore.AppendStringElement(nil, "db", "$external"))
	hello := c.command(0, cmd("hello", 1, "admin", bsoncore.AppendDocumentElement(nil, "speculativeAuthenticate", spec)))
	if done, _ := hello.Lookup("speculativeAuthenticate", "done").BooleanOK(); !done {
		t.Fatalf("hello: %v", hello)
	}
	if r := c.command(0, cmd("find", "docs", uniqueDB())); !okOf(r) {
		t.Fatalf("find after speculative authentication: %v", r)
	}
}

// TestDrainClosesIdleSessions: on shutdown an idle authenticated session is
// ended at once instead of holding the drain until its deadline.
func TestDrainClosesIdleSessions(t *testing.T) {
	p := startProxy(t, Options{})
	c := dialRaw(t, p)
	if r := c.command(0, cmd("saslStart", 1, "$external", bsoncore.AppendStringElement(nil, "mechanism", "PLAIN"),
		bsoncore.AppendBinaryElement(nil, "payload", 0, []byte("\x00\x00"+token(t, "acme"))))); !okOf(r) {
		t.Fatal(r)
	}
	if r := c.command(0, cmd("find", "docs", uniqueDB())); !okOf(r) {
		t.Fatal(r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := p.listener.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !c.closed() {
		t.Fatal("idle session left open after drain")
	}
}

// TestLimitsAndCompression: hello repeats the proxy's message limit, a
// larger frame after authentication ends the connection, and a driver asking
// for compression works uncompressed.
func TestLimitsAndCompression(t *testing.T) {
	const limit = 2 << 20
	p := startProxy(t, Options{MaxMessageBytes: limit})
	c := dialRaw(t, p)
	hello := c.command(0, cmd("hello", 1, "admin"))
	if n, _ := hello.Lookup("maxMessageSizeBytes").AsInt64OK(); n != limit {
		t.Fatalf("maxMessageSizeBytes = %d, want %d", n, limit)
	}
	if n, _ := hello.Lookup("maxBsonObjectSize").AsInt64OK(); n >= limit {
		t.Fatalf("maxBsonObjectSize = %d, not below the message limit", n)
	}
	if r := c.command(0, cmd("saslStart", 1, "$external", bsoncore.AppendStringElement(nil, "mechanism", "PLAIN"),
		bsoncore.AppendBinaryElement(nil, "payload", 0, []byte("\x00\x00"+token(t, "acme"))))); !okOf(r) {
		t.Fatal(r)
	}
	c.send(appendHeader(nil, MessageHeader{Length: limit + 1, OpCode: opMsg}))
	if !c.closed() {
		t.Fatal("an oversized frame did not end the connection")
	}

	opts := options.Client().ApplyURI("mongodb://" + p.addr + "/?compressors=zstd,snappy,zlib").
		SetAuth(options.Credential{AuthMechanism: "PLAIN", AuthSource: "$external", Password: token(t, "acme")})
	ctx := ctxT(t)
	coll := connect(t, opts).Database(uniqueDB()).Collection("c")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "blob", Value: strings.Repeat("x", 100_000)}}); err != nil {
		t.Fatalf("insert with compressors requested: %v", err)
	}
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
		t.Fatalf("count = %d, %v", n, err)
	}
}
