package redis

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits on what the reply reader accepts. They bound memory against a
// broken or hostile upstream (and the fuzzer): buffers grow only as bytes
// actually arrive, never from a declared length alone.
const (
	maxBulkLen    = 512 << 20 // Redis's own proto-max-bulk-len default
	maxAggregate  = 1 << 32   // elements of one array, map, set or push
	maxLineLen    = 16 << 10  // a simple string, error, number or header line; also the read buffer size
	bulkReadChunk = 64 << 10
	// maxRetainedBuffer is the largest buffer kept between replies: a
	// session that once read a huge value does not hold on to its memory.
	maxRetainedBuffer = 1 << 20
)

var errProtocol = errors.New("redis protocol error")

func protocolErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errProtocol}, args...)...)
}

// replyReader reads whole RESP2/RESP3 replies from the upstream as raw bytes,
// without decoding them: most replies are relayed to the client verbatim.
type replyReader struct {
	r   *bufio.Reader
	buf []byte
}

func newReplyReader(r io.Reader) *replyReader {
	return &replyReader{r: bufio.NewReaderSize(r, maxLineLen)}
}

// buffered reports whether more reply bytes are already buffered, so the
// caller can batch its writes to the client.
func (rr *replyReader) buffered() bool { return rr.r.Buffered() > 0 }

// next reads one complete reply (an attribute and the value it annotates
// count as one) and returns its bytes, valid until the next call.
func (rr *replyReader) next() ([]byte, error) {
	var err error
	rr.buf, err = rr.appendNext(reuse(rr.buf))
	return rr.buf, err
}

// appendNext reads one complete reply and appends its bytes to dst. On an
// error dst may hold part of the reply.
func (rr *replyReader) appendNext(dst []byte) ([]byte, error) {
	for pending := int64(1); pending > 0; {
		line, err := rr.r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return dst, protocolErrorf("line longer than %d bytes", maxLineLen)
			}
			return dst, err
		}
		if len(line) < 3 || line[len(line)-2] != '\r' {
			return dst, protocolErrorf("malformed line %q", truncate(line))
		}
		dst = append(dst, line...)
		kind, body := line[0], line[1:len(line)-2]
		switch kind {
		case '+', '-', ':', '_', '#', ',', '(':
			pending--
		case '$', '!', '=':
			n, err := parseLength(body, maxBulkLen)
			if err != nil {
				return dst, err
			}
			if n >= 0 {
				if dst, err = rr.appendBulk(dst, int(n)); err != nil {
					return dst, err
				}
			}
			pending--
		case '*', '~', '>', '%', '|':
			n, err := parseLength(body, maxAggregate)
			if err != nil {
				return dst, err
			}
			switch {
			case n < 0:
				pending--
			case kind == '%':
				pending += 2*n - 1
			case kind == '|':
				pending += 2 * n // the attribute precedes the value it annotates
			default:
				pending += n - 1
			}
		default:
			return dst, protocolErrorf("unknown reply type %q", kind)
		}
	}
	return dst, nil
}

// appendBulk appends n payload bytes and the CRLF after them, growing dst
// only as the bytes arrive.
func (rr *replyReader) appendBulk(dst []byte, n int) ([]byte, error) {
	for left := n + 2; left > 0; {
		chunk := min(left, bulkReadChunk)
		start := len(dst)
		dst = append(dst, make([]byte, chunk)...)
		if _, err := io.ReadFull(rr.r, dst[start:]); err != nil {
			return dst, err
		}
		left -= chunk
	}
	if dst[len(dst)-2] != '\r' || dst[len(dst)-1] != '\n' {
		return dst, protocolErrorf("bulk string not terminated by CRLF")
	}
	return dst, nil
}

// replyScanner finds where the complete replies in a buffer end, with the
// same limits and checks as replyReader, for the event loop, which reads
// replies as they arrive without blocking. A reply that is not complete
// yet is scanned on from where the scan stopped, not from its start.
type replyScanner struct {
	pos     int   // bytes of the current reply scanned
	pending int64 // values the current reply still needs; 0 between replies
}

// next returns the length of the reply at the start of b, 0 when it is
// not complete yet (b then grows by the bytes that arrive and next is
// called again with the reply still at its start).
func (s *replyScanner) next(b []byte) (int, error) {
	if s.pending == 0 {
		s.pos, s.pending = 0, 1
	}
	for s.pending > 0 {
		i := bytes.IndexByte(b[s.pos:], '\n')
		if i < 0 {
			if len(b)-s.pos >= maxLineLen {
				return 0, protocolErrorf("line longer than %d bytes", maxLineLen)
			}
			return 0, nil
		}
		line := b[s.pos : s.pos+i+1]
		if len(line) > maxLineLen {
			return 0, protocolErrorf("line longer than %d bytes", maxLineLen)
		}
		if len(line) < 3 || line[len(line)-2] != '\r' {
			return 0, protocolErrorf("malformed line %q", truncate(line))
		}
		next := s.pos + len(line)
		kind, body := line[0], line[1:len(line)-2]
		switch kind {
		case '+', '-', ':', '_', '#', ',', '(':
			s.pending--
		case '$', '!', '=':
			n, err := parseLength(body, maxBulkLen)
			if err != nil {
				return 0, err
			}
			if n >= 0 {
				end := next + int(n) + 2
				if end > len(b) {
					return 0, nil
				}
				if b[end-2] != '\r' || b[end-1] != '\n' {
					return 0, protocolErrorf("bulk string not terminated by CRLF")
				}
				next = end
			}
			s.pending--
		case '*', '~', '>', '%', '|':
			n, err := parseLength(body, maxAggregate)
			if err != nil {
				return 0, err
			}
			switch {
			case n < 0:
				s.pending--
			case kind == '%':
				s.pending += 2*n - 1
			case kind == '|':
				s.pending += 2 * n
			default:
				s.pending += n - 1
			}
		default:
			return 0, protocolErrorf("unknown reply type %q", kind)
		}
		s.pos = next
	}
	n := s.pos
	s.pos = 0
	return n, nil
}

// waitReply blocks until the start of the next reply has arrived.
func (rr *replyReader) waitReply() error {
	_, err := rr.r.Peek(1)
	return err
}

// parseLength parses a length header; -1 (null) is allowed, other negative
// values and values above limit are not.
func parseLength(b []byte, limit int64) (int64, error) {
	if len(b) == 2 && b[0] == '-' && b[1] == '1' {
		return -1, nil
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, protocolErrorf("bad length %q", truncate(b))
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, protocolErrorf("bad length %q", truncate(b))
		}
		n = n*10 + int64(c-'0')
	}
	if n > limit {
		return 0, protocolErrorf("length %d over the limit of %d", n, limit)
	}
	return n, nil
}

func truncate(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// value is a decoded reply. Byte slices point into the raw reply; only the
// replies that carry key names are decoded, to be rewritten.
type value struct {
	kind  byte    // the RESP type byte
	text  []byte  // payload of scalars: the bulk content, or the line after the type byte
	null  bool    // $-1 or *-1
	elems []value // aggregates; a map holds its keys and values alternately
}

// parseValue decodes the first value of raw (a reply from replyReader.next)
// and returns the rest. Attributes are skipped: no rewritten reply carries one.
func parseValue(raw []byte) (value, []byte, error) {
	line, rest, err := splitLine(raw)
	if err != nil {
		return value{}, nil, err
	}
	v := value{kind: line[0]}
	body := line[1:]
	switch v.kind {
	case '+', '-', ':', '_', '#', ',', '(':
		v.text = body
		return v, rest, nil
	case '$', '!', '=':
		n, err := parseLength(body, maxBulkLen)
		if err != nil {
			return value{}, nil, err
		}
		if n < 0 {
			v.null = true
			return v, rest, nil
		}
		if int64(len(rest)) < n+2 {
			return value{}, nil, protocolErrorf("truncated bulk string")
		}
		v.text = rest[:n]
		return v, rest[n+2:], nil
	case '*', '~', '>', '%', '|':
		n, err := parseLength(body, maxAggregate)
		if err != nil {
			return value{}, nil, err
		}
		if n < 0 {
			v.null = true
			return v, rest, nil
		}
		if v.kind == '%' || v.kind == '|' {
			n *= 2
		}
		// Every element takes at least 3 bytes: never trust n for capacity.
		v.elems = make([]value, 0, min(n, int64(len(rest)/3)))
		for range n {
			var e value
			if e, rest, err = parseValue(rest); err != nil {
				return value{}, nil, err
			}
			v.elems = append(v.elems, e)
		}
		if v.kind == '|' {
			return parseValue(rest)
		}
		return v, rest, nil
	}
	return value{}, nil, protocolErrorf("unknown reply type %q", v.kind)
}

func splitLine(raw []byte) (line, rest []byte, err error) {
	for i := 0; i+1 < len(raw); i++ {
		if raw[i] == '\r' && raw[i+1] == '\n' {
			if i == 0 {
				return nil, nil, protocolErrorf("empty line")
			}
			return raw[:i], raw[i+2:], nil
		}
	}
	return nil, nil, protocolErrorf("truncated line")
}

// appendValue encodes v in the same RESP type it was read as.
func appendValue(dst []byte, v value) []byte {
	switch v.kind {
	case '$', '!', '=':
		if v.null {
			return append(dst, v.kind, '-', '1', '\r', '\n')
		}
		dst = append(dst, v.kind)
		dst = strconv.AppendInt(dst, int64(len(v.text)), 10)
		dst = append(dst, '\r', '\n')
		dst = append(dst, v.text...)
		return append(dst, '\r', '\n')
	case '*', '~', '>', '%':
		if v.null {
			return append(dst, v.kind, '-', '1', '\r', '\n')
		}
		n := len(v.elems)
		if v.kind == '%' {
			n /= 2
		}
		dst = append(dst, v.kind)
		dst = strconv.AppendInt(dst, int64(n), 10)
		dst = append(dst, '\r', '\n')
		for _, e := range v.elems {
			dst = appendValue(dst, e)
		}
		return dst
	}
	dst = append(dst, v.kind)
	dst = append(dst, v.text...)
	return append(dst, '\r', '\n')
}

// isString reports whether v is a non-null string of any string type.
func (v value) isString() bool {
	switch v.kind {
	case '$', '+', '=':
		return !v.null
	}
	return false
}

// isAggregate reports whether v is a non-null array, set, push or map.
func (v value) isAggregate() bool {
	switch v.kind {
	case '*', '~', '>', '%':
		return !v.null
	}
	return false
}

// reuse empties buf for reuse, or drops it when it grew too large to keep.
func reuse(buf []byte) []byte {
	if cap(buf) > maxRetainedBuffer {
		return nil
	}
	return buf[:0]
}
