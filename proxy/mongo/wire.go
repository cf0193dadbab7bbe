package mongo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Opcodes of the MongoDB wire protocol that the proxy recognises.
const (
	opReply      int32 = 1
	opQuery      int32 = 2004
	opCompressed int32 = 2012
	opMsg        int32 = 2013
)

// OP_MSG flag bits.
const (
	flagChecksumPresent uint32 = 1 << 0
	flagMoreToCome      uint32 = 1 << 1
	flagExhaustAllowed  uint32 = 1 << 16
	// flagRequiredMask are the bits a parser must understand: any other set
	// bit among them is an error.
	flagRequiredMask uint32 = 0xffff
)

const (
	// readBufferSize buffers each connection's reads; larger messages are
	// read straight into their own buffer.
	readBufferSize = 16 << 10
	headerLen      = 16
	// minMessageLen is a header plus the smallest body any opcode has.
	minMessageLen = headerLen + 5
	// maxDepth bounds the nesting of documents and arrays. MongoDB itself
	// refuses commands nested deeper than about 180 levels; the bound keeps
	// every recursive walk over a decoded message within a small stack.
	maxDepth = 180
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WireError is a malformed or unsupported message. Fatal errors leave the
// stream unframed and end the connection; others are answered in band.
type WireError struct {
	Msg   string
	Fatal bool
}

func (e *WireError) Error() string { return "mongo wire: " + e.Msg }

func wireErr(fatal bool, format string, args ...any) *WireError {
	return &WireError{Msg: fmt.Sprintf(format, args...), Fatal: fatal}
}

// MessageHeader is the 16-byte header of every wire message.
type MessageHeader struct {
	Length     int32
	RequestID  int32
	ResponseTo int32
	OpCode     int32
}

// parseHeader decodes b[:16] and checks the length against max before
// anything of that length is allocated.
func parseHeader(b []byte, max int) (MessageHeader, error) {
	h := MessageHeader{
		Length:     int32(binary.LittleEndian.Uint32(b[0:])),
		RequestID:  int32(binary.LittleEndian.Uint32(b[4:])),
		ResponseTo: int32(binary.LittleEndian.Uint32(b[8:])),
		OpCode:     int32(binary.LittleEndian.Uint32(b[12:])),
	}
	if h.Length < minMessageLen {
		return h, wireErr(true, "message length %d is below the minimum of %d", h.Length, minMessageLen)
	}
	if int64(h.Length) > int64(max) {
		return h, wireErr(true, "message length %d exceeds max_message_bytes %d", h.Length, max)
	}
	return h, nil
}

func appendHeader(dst []byte, h MessageHeader) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(h.Length))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(h.RequestID))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(h.ResponseTo))
	return binary.LittleEndian.AppendUint32(dst, uint32(h.OpCode))
}

// readMessage reads one whole message of at most max bytes. The returned
// slice holds the header too, and reuses buf when it is large enough.
func readMessage(r io.Reader, buf []byte, max int) (MessageHeader, []byte, error) {
	var hb [headerLen]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return MessageHeader{}, nil, err
	}
	h, err := parseHeader(hb[:], max)
	if err != nil {
		return h, nil, err
	}
	n := int(h.Length)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	copy(buf, hb[:])
	if _, err := io.ReadFull(r, buf[headerLen:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, err
	}
	return h, buf, nil
}

// Sequence is an OP_MSG kind-1 section: a named run of documents, such as
// insert's "documents".
type Sequence struct {
	Identifier string
	Docs       []bsoncore.Document
}

// OpMsg is a decoded OP_MSG. Body and the sequence documents point into the
// message buffer; nothing is copied.
type OpMsg struct {
	Flags     uint32
	Body      bsoncore.Document
	Sequences []Sequence
}

// MoreToCome reports whether the sender expects no reply.
func (m *OpMsg) MoreToCome() bool { return m.Flags&flagMoreToCome != 0 }

// Sequence returns the documents of the kind-1 section named id.
func (m *OpMsg) Sequence(id string) ([]bsoncore.Document, bool) {
	for _, s := range m.Sequences {
		if s.Identifier == id {
			return s.Docs, true
		}
	}
	return nil, false
}

// parseOpMsg decodes a whole OP_MSG, header included. The checksum, when present, is verified over the whole message. Every document
// is validated to the bottom, to maxDepth, so later walks cannot fail.
func parseOpMsg(whole []byte) (*OpMsg, error) {
	b := whole[headerLen:]
	if len(b) < 4 {
		return nil, wireErr(false, "OP_MSG too short")
	}
	m := &OpMsg{Flags: binary.LittleEndian.Uint32(b)}
	if unknown := m.Flags & flagRequiredMask &^ (flagChecksumPresent | flagMoreToCome); unknown != 0 {
		return nil, wireErr(false, "OP_MSG has unknown required flag bits %#x", unknown)
	}
	b = b[4:]
	if m.Flags&flagChecksumPresent != 0 {
		if len(b) < 4 {
			return nil, wireErr(false, "OP_MSG checksum missing")
		}
		split := len(whole) - 4
		want := binary.LittleEndian.Uint32(whole[split:])
		if got := crc32.Checksum(whole[:split], castagnoli); got != want {
			return nil, wireErr(false, "OP_MSG checksum mismatch")
		}
		b = b[:len(b)-4]
	}
	for len(b) > 0 {
		kind := b[0]
		b = b[1:]
		switch kind {
		case 0:
			if m.Body != nil {
				return nil, wireErr(false, "OP_MSG has more than one body section")
			}
			doc, rest, err := readDoc(b)
			if err != nil {
				return nil, err
			}
			m.Body, b = doc, rest
		case 1:
			seq, rest, err := readSequence(b)
			if err != nil {
				return nil, err
			}
			m.Sequences = append(m.Sequences, seq)
			b = rest
		default:
			return nil, wireErr(false, "OP_MSG section kind %d is not supported", kind)
		}
	}
	if m.Body == nil {
		return nil, wireErr(false, "OP_MSG has no body section")
	}
	return m, nil
}

func readSequence(b []byte) (Sequence, []byte, error) {
	if len(b) < 4 {
		return Sequence{}, nil, wireErr(false, "OP_MSG document sequence truncated")
	}
	size := int(binary.LittleEndian.Uint32(b))
	if size < 5 || size > len(b) {
		return Sequence{}, nil, wireErr(false, "OP_MSG document sequence size %d out of bounds", size)
	}
	sec, rest := b[4:size], b[size:]
	id, sec, ok := bsoncore.ReadKey(sec)
	if !ok || id == "" {
		return Sequence{}, nil, wireErr(false, "OP_MSG document sequence has no identifier")
	}
	seq := Sequence{Identifier: id}
	for len(sec) > 0 {
		doc, more, err := readDoc(sec)
		if err != nil {
			return Sequence{}, nil, err
		}
		seq.Docs = append(seq.Docs, doc)
		sec = more
	}
	return seq, rest, nil
}

// readDoc splits one validated document off b.
func readDoc(b []byte) (bsoncore.Document, []byte, error) {
	doc, rest, ok := bsoncore.ReadDocument(b)
	if !ok {
		return nil, nil, wireErr(false, "truncated BSON document")
	}
	if err := validateDepth(doc, 0); err != nil {
		return nil, nil, err
	}
	return doc, rest, nil
}

// validateDepth checks doc and everything in it, refusing nesting beyond
// maxDepth and JavaScript-with-scope values.
func validateDepth(doc []byte, depth int) error {
	if depth > maxDepth {
		return wireErr(false, "BSON nested deeper than %d levels", maxDepth)
	}
	if err := bsoncore.Document(doc).Validate(); err != nil {
		return wireErr(false, "invalid BSON: %v", err)
	}
	rest := doc[4 : len(doc)-1]
	for len(rest) > 0 {
		elem, more, _ := bsoncore.ReadElement(rest) // Validate succeeded
		rest = more
		v := elem.Value()
		switch v.Type {
		case bsoncore.TypeEmbeddedDocument, bsoncore.TypeArray:
			if err := validateDepth(v.Data, depth+1); err != nil {
				return err
			}
		case bsoncore.TypeCodeWithScope:
			return wireErr(false, "JavaScript with scope is not accepted")
		}
	}
	return nil
}

// appendOpMsg encodes m as a whole OP_MSG without checksum and without the
// exhaustAllowed bit: the proxy never grants exhaust.
func appendOpMsg(dst []byte, requestID, responseTo int32, m *OpMsg) []byte {
	start := len(dst)
	dst = appendHeader(dst, MessageHeader{RequestID: requestID, ResponseTo: responseTo, OpCode: opMsg})
	dst = binary.LittleEndian.AppendUint32(dst, m.Flags&flagMoreToCome)
	dst = append(dst, 0)
	dst = append(dst, m.Body...)
	for _, s := range m.Sequences {
		dst = append(dst, 1)
		sizeAt := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		dst = append(dst, s.Identifier...)
		dst = append(dst, 0)
		for _, d := range s.Docs {
			dst = append(dst, d...)
		}
		binary.LittleEndian.PutUint32(dst[sizeAt:], uint32(len(dst)-sizeAt))
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

// OpQuery is the part of a legacy OP_QUERY the proxy looks at.
type OpQuery struct {
	Collection string
	Query      bsoncore.Document
}

func parseOpQuery(whole []byte) (*OpQuery, error) {
	b := whole[headerLen:]
	if len(b) < 4 {
		return nil, wireErr(false, "OP_QUERY too short")
	}
	coll, rest, ok := bsoncore.ReadKey(b[4:])
	if !ok || len(rest) < 8 {
		return nil, wireErr(false, "OP_QUERY truncated")
	}
	doc, _, err := readDoc(rest[8:])
	if err != nil {
		return nil, err
	}
	return &OpQuery{Collection: coll, Query: doc}, nil
}

// opReplyQueryFailure is OP_REPLY's QueryFailure response flag.
const opReplyQueryFailure int32 = 1 << 1

// appendOpReply encodes a legacy OP_REPLY carrying one document.
func appendOpReply(dst []byte, requestID, responseTo, flags int32, doc []byte) []byte {
	start := len(dst)
	dst = appendHeader(dst, MessageHeader{RequestID: requestID, ResponseTo: responseTo, OpCode: opReply})
	dst = binary.LittleEndian.AppendUint32(dst, uint32(flags))
	dst = binary.LittleEndian.AppendUint64(dst, 0) // cursorID
	dst = binary.LittleEndian.AppendUint32(dst, 0) // startingFrom
	dst = binary.LittleEndian.AppendUint32(dst, 1) // numberReturned
	dst = append(dst, doc...)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}
