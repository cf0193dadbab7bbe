package redis

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/tidwall/redcon"
)

// Limits on client requests, as Redis's own defaults.
const (
	// maxPendingRequestBytes bounds what a client may send without
	// completing a command (proto-max-bulk-len is 512 MiB).
	maxPendingRequestBytes = 512<<20 + 64<<10
	maxRequestArgs         = 1 << 20  // the multibulk length Redis accepts
	maxInlineLen           = 64 << 10 // an inline command or a multibulk header line
	requestBufferSize      = 16 << 10
)

// command is one client command. Raw and Args point into the reader's
// buffer and are valid until the next readCommands.
type command struct {
	Raw  []byte
	Args [][]byte
	off  int // where Raw starts in the reader's buffer
}

// requestReader reads client commands. RESP arrays of bulk strings (what
// every client library sends) are parsed in place, without allocating;
// inline commands (telnet style) are rare and handed to redcon's parser.
type requestReader struct {
	r          io.Reader
	buf        []byte
	start, end int // unparsed bytes are buf[start:end]
	cmds       []command
	args       [][]byte // backing store of the cmds' Args
}

func newRequestReader(r io.Reader) *requestReader {
	return &requestReader{r: r, buf: make([]byte, requestBufferSize)}
}

var (
	errMultibulkLength = errors.New("invalid multibulk length")
	errBulkLength      = errors.New("invalid bulk length")
	errInlineTooBig    = errors.New("too big inline request")
	errRequestTooBig   = errors.New("request larger than the proxy accepts")
)

// readCommands returns the complete commands received, reading from the
// client until there is at least one. Commands still arriving stay
// buffered for the next call.
func (rr *requestReader) readCommands() ([]command, error) {
	for {
		cmds, err := rr.parse()
		if err != nil || len(cmds) > 0 {
			return cmds, err
		}
		if err := rr.fill(); err != nil {
			return nil, err
		}
	}
}

// fill reads more bytes, first moving the incomplete command to the front
// of the buffer (the previous commands are no longer in use) and growing
// the buffer only when that command fills it.
func (rr *requestReader) fill() error {
	pending := rr.end - rr.start
	switch {
	case pending == 0 && len(rr.buf) > maxRetainedBuffer:
		rr.buf = make([]byte, requestBufferSize) // do not keep a huge value's memory
	case pending == len(rr.buf):
		if pending >= maxPendingRequestBytes {
			return errRequestTooBig
		}
		grown := make([]byte, min(2*len(rr.buf), maxPendingRequestBytes))
		copy(grown, rr.buf[rr.start:rr.end])
		rr.buf = grown
	default:
		copy(rr.buf, rr.buf[rr.start:rr.end])
	}
	rr.start, rr.end = 0, pending
	n, err := rr.r.Read(rr.buf[rr.end:])
	rr.end += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// unread puts cmd, one of the commands the last parse returned, and the
// commands after it back in the buffer, for the next parse to return again.
func (rr *requestReader) unread(cmd command) { rr.start = cmd.off }

// buffered reports whether bytes of a command not returned yet are
// buffered.
func (rr *requestReader) buffered() bool { return rr.start < rr.end }

// parse takes the complete commands off the buffer.
func (rr *requestReader) parse() ([]command, error) {
	rr.cmds, rr.args = rr.cmds[:0], rr.args[:0]
	for rr.start < rr.end {
		b := rr.buf[rr.start:rr.end]
		var used int
		var err error
		if b[0] == '*' {
			used, err = rr.parseArray(b)
		} else {
			used, err = rr.parseInline(b)
		}
		if err != nil && len(rr.cmds) == 0 {
			return nil, err
		}
		if err != nil || used == 0 {
			// Incomplete; or malformed after complete commands, which are
			// served first: the next call meets the error again.
			break
		}
		rr.start += used
	}
	return rr.cmds, nil
}

// parseArray parses *<n>\r\n followed by n bulk strings. It returns the
// bytes used, 0 when the command is not complete yet.
func (rr *requestReader) parseArray(b []byte) (int, error) {
	header, pos, err := requestLine(b, 0)
	if header == nil || err != nil {
		return 0, err
	}
	n, err := parseLength(header[1:], maxRequestArgs)
	if err != nil {
		return 0, errMultibulkLength
	}
	if n <= 0 {
		return pos, nil // Redis ignores empty arrays
	}
	first := len(rr.args)
	for range n {
		line, next, err := requestLine(b, pos)
		if line == nil || err != nil {
			rr.args = rr.args[:first]
			return 0, err
		}
		if line[0] != '$' {
			return 0, errors.New("expected '$', got '" + string(line[:1]) + "'")
		}
		size, err := parseLength(line[1:], maxBulkLen)
		if err != nil || size < 0 {
			return 0, errBulkLength
		}
		end := next + int(size)
		if end+2 > len(b) {
			rr.args = rr.args[:first]
			return 0, nil
		}
		rr.args = append(rr.args, b[next:end:end])
		pos = end + 2
	}
	rr.cmds = append(rr.cmds, command{Raw: b[:pos:pos], Args: rr.args[first:len(rr.args):len(rr.args)], off: rr.start})
	return pos, nil
}

// requestLine returns the line starting at b[pos] without its CRLF and the
// position after it; nil when the line is not complete yet.
func requestLine(b []byte, pos int) (line []byte, next int, err error) {
	i := bytes.Index(b[pos:], []byte("\r\n"))
	if i < 0 {
		if len(b)-pos > maxInlineLen {
			return nil, 0, errInlineTooBig
		}
		return nil, 0, nil
	}
	if i == 0 {
		return nil, 0, errMultibulkLength
	}
	return b[pos : pos+i], pos + i + 2, nil
}

// parseInline parses one inline command line with redcon (quotes and
// escapes as Redis's sdssplitargs); an empty line is skipped.
func (rr *requestReader) parseInline(b []byte) (int, error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(b) > maxInlineLen {
			return 0, errInlineTooBig
		}
		return 0, nil
	}
	line := b[:i+1]
	if len(bytes.Trim(line, " \r\n")) == 0 {
		return len(line), nil
	}
	cmds, err := redcon.NewReader(bytes.NewReader(line)).ReadCommands()
	if err != nil {
		// The session adds the "Protocol error: " redcon starts with.
		return 0, errors.New(strings.TrimPrefix(err.Error(), "Protocol error: "))
	}
	for _, c := range cmds {
		if len(c.Args) > 0 {
			rr.cmds = append(rr.cmds, command{Raw: line, Args: c.Args, off: rr.start})
		}
	}
	return len(line), nil
}
