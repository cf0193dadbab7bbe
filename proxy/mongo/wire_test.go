package mongo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

func doc(elems ...[]byte) bsoncore.Document { return bsoncore.BuildDocument(nil, elems...) }

func pingDoc() bsoncore.Document {
	return doc(bsoncore.AppendInt32Element(nil, "ping", 1), bsoncore.AppendStringElement(nil, "$db", "app"))
}

// rawMsg frames an OP_MSG body (flags + sections) with a header.
func rawMsg(requestID int32, body []byte) []byte {
	h := appendHeader(nil, MessageHeader{Length: int32(headerLen + len(body)), RequestID: requestID, OpCode: opMsg})
	return append(h, body...)
}

func withChecksum(msg []byte) []byte {
	out := append([]byte(nil), msg...)
	binary.LittleEndian.PutUint32(out[headerLen:], binary.LittleEndian.Uint32(out[headerLen:])|flagChecksumPresent)
	out = binary.LittleEndian.AppendUint32(out, 0)
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	sum := crc32.Checksum(out[:len(out)-4], castagnoli)
	binary.LittleEndian.PutUint32(out[len(out)-4:], sum)
	return out
}

func TestReadMessageBounds(t *testing.T) {
	for _, c := range []struct {
		name   string
		length int32
		fatal  bool
	}{
		{"negative", -1, true},
		{"below header", 10, true},
		{"over max", 1 << 21, true},
		{"fits", 32, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := appendHeader(nil, MessageHeader{Length: c.length, OpCode: opMsg})
			b = append(b, make([]byte, 16)...)
			_, _, err := readMessage(bytes.NewReader(b), nil, 1<<20)
			var werr *WireError
			if c.fatal != (errors.As(err, &werr) && werr.Fatal) {
				t.Fatalf("err = %v, want fatal %v", err, c.fatal)
			}
		})
	}
	// A truncated body is an unexpected EOF, not a clean end.
	b := appendHeader(nil, MessageHeader{Length: 64, OpCode: opMsg})
	if _, _, err := readMessage(bytes.NewReader(b), nil, 1<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestParseOpMsg(t *testing.T) {
	body := pingDoc()
	kind0 := append(binary.LittleEndian.AppendUint32(nil, 0), append([]byte{0}, body...)...)
	seqDoc := doc(bsoncore.AppendInt32Element(nil, "x", 1))
	seq := []byte{1}
	seq = binary.LittleEndian.AppendUint32(seq, uint32(4+len("documents")+1+2*len(seqDoc)))
	seq = append(append(seq, "documents\x00"...), append(seqDoc, seqDoc...)...)

	good := rawMsg(1, kind0)
	for _, c := range []struct {
		name    string
		msg     []byte
		wantErr bool
		seqDocs int
	}{
		{"body only", good, false, 0},
		{"body and sequence", rawMsg(1, append(append([]byte(nil), kind0...), seq...)), false, 2},
		{"checksum verified", withChecksum(good), false, 0},
		{"checksum wrong", func() []byte { m := withChecksum(good); m[len(m)-1] ^= 0xff; return m }(), true, 0},
		{"unknown required flag", rawMsg(1, append(binary.LittleEndian.AppendUint32(nil, 1<<4), kind0[4:]...)), true, 0},
		{"exhaustAllowed is optional", rawMsg(1, append(binary.LittleEndian.AppendUint32(nil, flagExhaustAllowed), kind0[4:]...)), false, 0},
		{"no body", rawMsg(1, binary.LittleEndian.AppendUint32(nil, 0)), true, 0},
		{"two bodies", rawMsg(1, append(append([]byte(nil), kind0...), kind0[4:]...)), true, 0},
		{"section kind 2", rawMsg(1, append(append([]byte(nil), kind0...), 2)), true, 0},
		{"truncated document", rawMsg(1, kind0[:len(kind0)-3]), true, 0},
		{"sequence size too big", rawMsg(1, append(append([]byte(nil), kind0...), 1, 0xff, 0xff, 0, 0)), true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := parseOpMsg(c.msg)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if err != nil {
				return
			}
			if !bytes.Equal(m.Body, body) {
				t.Fatalf("body = %v", m.Body)
			}
			if docs, _ := m.Sequence("documents"); len(docs) != c.seqDocs {
				t.Fatalf("sequence docs = %d, want %d", len(docs), c.seqDocs)
			}
		})
	}
}

func TestValidateDepth(t *testing.T) {
	deep := doc(bsoncore.AppendInt32Element(nil, "x", 1))
	for range maxDepth + 1 {
		deep = doc(bsoncore.AppendDocumentElement(nil, "d", deep))
	}
	if err := validateDepth(deep, 0); err == nil {
		t.Fatal("nesting beyond maxDepth accepted")
	}
	scope := bsoncore.AppendCodeWithScopeElement(nil, "f", "return 1", doc())
	if err := validateDepth(doc(scope), 0); err == nil {
		t.Fatal("code with scope accepted")
	}
}

// TestAppendOpMsgRoundTrip: what the proxy sends parses back, without the
// checksum and exhaustAllowed bits.
func TestAppendOpMsgRoundTrip(t *testing.T) {
	in := &OpMsg{
		Flags: flagMoreToCome | flagExhaustAllowed | flagChecksumPresent,
		Body:  pingDoc(),
		Sequences: []Sequence{{Identifier: "documents", Docs: []bsoncore.Document{
			doc(bsoncore.AppendInt32Element(nil, "a", 1)), doc(bsoncore.AppendInt32Element(nil, "b", 2)),
		}}},
	}
	out, err := parseOpMsg(appendOpMsg(nil, 7, 3, in))
	if err != nil {
		t.Fatal(err)
	}
	if out.Flags != flagMoreToCome {
		t.Fatalf("flags = %#x, want moreToCome only", out.Flags)
	}
	docs, _ := out.Sequence("documents")
	if len(docs) != 2 || !bytes.Equal(out.Body, in.Body) {
		t.Fatalf("round trip lost data: %+v", out)
	}
}
