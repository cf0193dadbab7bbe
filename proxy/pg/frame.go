package pg

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/tenantgate/tenantgate/proxy"
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
//
// Its source can change without losing what is buffered (setSource): a
// socket moves between the Go runtime (blocking reads, next) and an event
// loop (non-blocking reads, tryNext) and back.
type msgReader struct {
	r      *bufio.Reader
	src    source
	max    int
	buf    []byte
	header [5]byte
	last   []byte // the frame returned last, for unread
	again  bool   // unread: the next call returns last again
	// A message larger than the buffer arriving in pieces (tryNext):
	// buf[:have] of buf[:want] arrived.
	have, want int
}

// source is the msgReader's underlying reader, replaceable.
type source struct{ r io.Reader }

func (s *source) Read(p []byte) (int, error) { return s.r.Read(p) }

func newMsgReader(r io.Reader, max int) *msgReader { return newMsgReaderSize(r, max, 32<<10) }

// newMsgReaderSize is newMsgReader with a read buffer of size bytes.
func newMsgReaderSize(r io.Reader, max, size int) *msgReader {
	m := &msgReader{max: max}
	m.src.r = r
	m.r = bufio.NewReaderSize(&m.src, size)
	return m
}

// setSource makes r the reader the bytes come from from now on; what was
// read from the previous one stays buffered.
func (m *msgReader) setSource(r io.Reader) { m.src.r = r }

// next returns the next message's type, its whole frame and its body.
func (m *msgReader) next() (typ byte, frame, body []byte, err error) {
	if m.again {
		m.again = false
		return m.last[0], m.last, m.last[5:], nil
	}
	if m.want > 0 { // the rest of a message tryNext began
		if _, err = io.ReadFull(m.r, m.buf[m.have:m.want]); err != nil {
			return 0, nil, nil, err
		}
		return m.complete()
	}
	if _, err = io.ReadFull(m.r, m.header[:]); err != nil {
		return 0, nil, nil, err
	}
	n, err := m.frameLen(m.header[:])
	if err != nil {
		return 0, nil, nil, err
	}
	m.grow(n + 1)
	copy(m.buf, m.header[:])
	if _, err = io.ReadFull(m.r, m.buf[5:n+1]); err != nil {
		return 0, nil, nil, err
	}
	m.have, m.want = 0, n+1
	return m.complete()
}

// tryNext is next for a non-blocking source (one that returns
// proxy.ErrWouldBlock when it has nothing): ok is false, with a nil error,
// until the whole message has arrived. What did arrive is kept for the next
// call; nothing blocks.
func (m *msgReader) tryNext() (typ byte, frame, body []byte, ok bool, err error) {
	if m.again {
		m.again = false
		return m.last[0], m.last, m.last[5:], true, nil
	}
	if m.want == 0 {
		hdr, err := m.r.Peek(5)
		if len(hdr) < 5 {
			return 0, nil, nil, false, notYet(err)
		}
		n, err := m.frameLen(hdr)
		if err != nil {
			return 0, nil, nil, false, err
		}
		if m.r.Buffered() > n {
			// All buffered: the frame is returned where it lies, valid
			// until the next call reads into the buffer again, and
			// capped there, so that appending to it cannot overwrite the
			// messages after it.
			frame, _ := m.r.Peek(n + 1)
			_, _ = m.r.Discard(n + 1)
			frame = frame[: n+1 : n+1]
			m.last = frame
			return frame[0], frame, frame[5:], true, nil
		}
		m.grow(n + 1)
		copy(m.buf, hdr)
		_, _ = m.r.Discard(5)
		m.have, m.want = 5, n+1
	}
	for m.have < m.want {
		k, err := m.r.Read(m.buf[m.have:m.want])
		m.have += k
		if k == 0 || err != nil {
			return 0, nil, nil, false, notYet(err)
		}
	}
	typ, frame, body, err = m.complete()
	return typ, frame, body, true, err
}

// notYet is the error of a read that found no complete message: none when
// the source just had nothing more yet. Both errors come unwrapped (the
// socket's and bufio's own), so they are compared, not unwrapped: this runs
// for every message.
func notYet(err error) error {
	if err == nil || err == proxy.ErrWouldBlock || err == bufio.ErrBufferFull {
		return nil
	}
	return err
}

func (m *msgReader) frameLen(hdr []byte) (int, error) {
	n := int(binary.BigEndian.Uint32(hdr[1:5]))
	if n < 4 || n-4 > m.max {
		return 0, fmt.Errorf("message %q: %w (%d bytes)", hdr[0], errTooLong, n)
	}
	return n, nil
}

func (m *msgReader) grow(n int) {
	if cap(m.buf) < n {
		m.buf = make([]byte, n, max(n, 2*cap(m.buf)))
	}
}

// complete returns the message assembled in buf[:want].
func (m *msgReader) complete() (typ byte, frame, body []byte, err error) {
	frame = m.buf[:m.want]
	m.have, m.want = 0, 0
	if cap(m.buf) > 1<<20 && len(frame) < 64<<10 {
		m.buf = nil // do not keep one huge message's buffer for the whole session
	}
	m.last = frame
	return frame[0], frame, frame[5:], nil
}

// unread makes the next call return the message returned last again.
func (m *msgReader) unread() { m.again = true }

// buffered reports whether more input is already waiting, so writers can
// delay flushing while a pipeline is still arriving.
func (m *msgReader) buffered() bool { return m.again || m.want > 0 || m.r.Buffered() > 0 }

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
