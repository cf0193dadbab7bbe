package pg

import (
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
// a message passes through without being decoded and encoded again. A
// message that fits the read buffer is returned where it lies in it, with
// its capacity capped at its end, so that appending to a frame never
// overwrites the messages after it; a larger one is put together in a
// buffer of its own.
//
// Its source can change without losing what is buffered (setSource): a
// socket moves between the Go runtime (blocking reads, next) and an event
// loop (non-blocking reads, tryNext) and back.
type msgReader struct {
	src source
	max int
	buf []byte // the read buffer: buf[r:w] arrived and was not returned yet
	r   int
	w   int
	// err is the source's error that came with its last bytes, returned
	// once the messages before it have been.
	err error
	// A message larger than buf: big[:have] of big[:want] arrived.
	big        []byte
	have, want int
	last       []byte // the frame returned last, for unread
	again      bool   // unread: the next call returns last again
}

// source is the msgReader's underlying reader, replaceable.
type source struct{ r io.Reader }

func (s *source) Read(p []byte) (int, error) { return s.r.Read(p) }

func newMsgReader(r io.Reader, bound int) *msgReader { return newMsgReaderSize(r, bound, 32<<10) }

// newMsgReaderSize is newMsgReader with a read buffer of size bytes (at
// least a message header's 5).
func newMsgReaderSize(r io.Reader, bound, size int) *msgReader {
	m := &msgReader{max: bound, buf: make([]byte, max(size, 5))}
	m.src.r = r
	return m
}

// setSource makes r the reader the bytes come from from now on; what was
// read from the previous one stays buffered.
func (m *msgReader) setSource(r io.Reader) { m.src.r = r }

// next returns the next message's type, its whole frame and its body,
// reading (and blocking) as long as it takes. The stream's end is io.EOF
// between messages and io.ErrUnexpectedEOF inside one.
func (m *msgReader) next() (typ byte, frame, body []byte, err error) {
	for empty := 0; ; {
		frame, err := m.take()
		if frame != nil || err != nil {
			return m.deliver(frame, err)
		}
		n, err := m.fill()
		switch {
		case err == io.EOF && (m.w > m.r || m.want > 0):
			return 0, nil, nil, io.ErrUnexpectedEOF
		case err != nil:
			return 0, nil, nil, err
		case n == 0:
			if empty++; empty >= 100 {
				return 0, nil, nil, io.ErrNoProgress
			}
		}
	}
}

// tryNext is next for a non-blocking source (one that returns
// proxy.ErrWouldBlock when it has nothing): ok is false, with a nil error,
// until the whole message has arrived. What did arrive is kept for the next
// call; nothing blocks.
func (m *msgReader) tryNext() (typ byte, frame, body []byte, ok bool, err error) {
	for {
		frame, err := m.take()
		if frame != nil || err != nil {
			typ, frame, body, err := m.deliver(frame, err)
			return typ, frame, body, err == nil, err
		}
		n, err := m.fill()
		if err == proxy.ErrWouldBlock || (err == nil && n == 0) {
			return 0, nil, nil, false, nil
		}
		if err != nil {
			return 0, nil, nil, false, err
		}
	}
}

// deliver returns frame, or err, as next and tryNext do.
func (m *msgReader) deliver(frame []byte, err error) (typ byte, _, body []byte, _ error) {
	if err != nil {
		return 0, nil, nil, err
	}
	m.last = frame
	return frame[0], frame, frame[5:], nil
}

// take returns the next message if all of it has arrived, nil if not; an
// error for a length out of bounds.
func (m *msgReader) take() ([]byte, error) {
	if m.again {
		m.again = false
		return m.last, nil
	}
	if m.want > 0 {
		if m.have < m.want {
			return nil, nil
		}
		frame := m.big[:m.want:m.want]
		m.have, m.want = 0, 0
		if cap(m.big) > 1<<20 {
			m.big = nil // do not keep one huge message's buffer for the whole session
		}
		return frame, nil
	}
	if m.w-m.r < 5 {
		return nil, nil
	}
	n, err := m.frameLen(m.buf[m.r : m.r+5])
	if err != nil {
		return nil, err
	}
	end := m.r + n + 1
	if end <= m.w {
		frame := m.buf[m.r:end:end]
		m.r = end
		return frame, nil
	}
	if n+1 > len(m.buf) {
		// Larger than the buffer: what arrived moves to a buffer of its
		// own, and the rest is read into it.
		if cap(m.big) < n+1 {
			m.big = make([]byte, n+1)
		}
		m.big = m.big[:n+1]
		m.have, m.want = copy(m.big, m.buf[m.r:m.w]), n+1
		m.r, m.w = 0, 0
	}
	return nil, nil
}

// fill reads once from the source: into the message being put together,
// or into the buffer's free end, first moving what is left of it to the
// front when the message it begins would not fit behind.
func (m *msgReader) fill() (int, error) {
	if m.err != nil {
		err := m.err
		m.err = nil
		return 0, err
	}
	var n int
	var err error
	if m.want > 0 {
		n, err = m.src.Read(m.big[m.have:m.want])
		m.have += n
	} else {
		if m.r == m.w {
			m.r, m.w = 0, 0
		} else if len(m.buf)-m.r < m.needed() {
			m.w = copy(m.buf, m.buf[m.r:m.w])
			m.r = 0
		}
		n, err = m.src.Read(m.buf[m.w:])
		m.w += n
	}
	if n > 0 && err != nil {
		m.err, err = err, nil // after the messages that did arrive
	}
	return n, err
}

// needed is how much of the buffer the message at its read position takes:
// its whole frame once its header is in, else at least the header.
func (m *msgReader) needed() int {
	if m.w-m.r >= 5 {
		return int(binary.BigEndian.Uint32(m.buf[m.r+1:m.r+5])) + 1
	}
	return len(m.buf) // move it to the front: there is room behind for anything
}

func (m *msgReader) frameLen(hdr []byte) (int, error) {
	n := int(binary.BigEndian.Uint32(hdr[1:5]))
	if n < 4 || n-4 > m.max {
		return 0, fmt.Errorf("message %q: %w (%d bytes)", hdr[0], errTooLong, n)
	}
	return n, nil
}

// unread makes the next call return the message returned last again.
func (m *msgReader) unread() { m.again = true }

// buffered reports whether more input is already waiting, so writers can
// delay flushing while a pipeline is still arriving.
func (m *msgReader) buffered() bool { return m.again || m.want > 0 || m.w > m.r }

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
