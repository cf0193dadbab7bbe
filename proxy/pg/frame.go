package pg

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Wire-format limits.
const (
	maxStartupLen  = 10000    // PostgreSQL's MAX_STARTUP_PACKET_LENGTH
	maxPasswordLen = 64 << 10 // a JWT with many claims or an RSA signature fits
	maxMessageLen  = 64 << 20 // a client message larger than this ends the session
)

// Startup request codes (the "protocol version" of special startup packets).
const (
	codeCancel   = 80877102
	codeSSL      = 80877103
	codeGSSENC   = 80877104
	protoMajor3  = 3
	protoVersion = 3 << 16
)

var errTooLong = errors.New("message length out of range")

// readStartup reads one untyped startup packet (length, then body) directly
// from r, without read-ahead: after an SSLRequest nothing the client sent in
// plaintext may be taken as if it had come over TLS.
func readStartup(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n < 8 || n > maxStartupLen {
		return nil, fmt.Errorf("startup packet: %w (%d bytes)", errTooLong, n)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

// msgReader reads typed protocol messages. The returned frame (type byte,
// length and body) is valid until the next call; it is what gets relayed, so
// a message passes through without being decoded and encoded again.
type msgReader struct {
	r      *bufio.Reader
	max    int
	buf    []byte
	header [5]byte
}

func newMsgReader(r io.Reader, max int) *msgReader {
	return &msgReader{r: bufio.NewReaderSize(r, 32<<10), max: max}
}

// next returns the next message's type, its whole frame and its body.
func (m *msgReader) next() (typ byte, frame, body []byte, err error) {
	if _, err = io.ReadFull(m.r, m.header[:]); err != nil {
		return 0, nil, nil, err
	}
	n := int(binary.BigEndian.Uint32(m.header[1:]))
	if n < 4 || n-4 > m.max {
		return 0, nil, nil, fmt.Errorf("message %q: %w (%d bytes)", m.header[0], errTooLong, n)
	}
	if cap(m.buf) < n+1 {
		m.buf = make([]byte, n+1, max(n+1, 2*cap(m.buf)))
	}
	frame = m.buf[:n+1]
	copy(frame, m.header[:])
	if _, err = io.ReadFull(m.r, frame[5:]); err != nil {
		return 0, nil, nil, err
	}
	if cap(m.buf) > 1<<20 && n < 64<<10 {
		m.buf = nil // do not keep one huge message's buffer for the whole session
	}
	return frame[0], frame, frame[5:], nil
}

// buffered reports whether more input is already waiting, so writers can
// delay flushing while a pipeline is still arriving.
func (m *msgReader) buffered() bool { return m.r.Buffered() > 0 }

// cstring splits a NUL-terminated string off b.
func cstring(b []byte) (s string, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(b[:i]), b[i+1:], true
}

// appendMsg appends a message of type typ with body to dst.
func appendMsg(dst []byte, typ byte, body ...[]byte) []byte {
	n := 4
	for _, b := range body {
		n += len(b)
	}
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	for _, b := range body {
		dst = append(dst, b...)
	}
	return dst
}
