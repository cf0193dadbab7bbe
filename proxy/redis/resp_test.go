package redis

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReplyReaderReadsWholeReplies(t *testing.T) {
	tests := []struct{ name, in string }{
		{"simple string", "+OK\r\n"},
		{"error", "-ERR no\r\n"},
		{"integer", ":-42\r\n"},
		{"bulk", "$5\r\nhe\r\nl\r\n"},
		{"empty bulk", "$0\r\n\r\n"},
		{"null bulk", "$-1\r\n"},
		{"null array", "*-1\r\n"},
		{"nested array", "*2\r\n*1\r\n:1\r\n$1\r\nx\r\n"},
		{"empty array", "*0\r\n"},
		{"RESP3 null", "_\r\n"},
		{"RESP3 boolean, double, big number", "*3\r\n#t\r\n,1.5\r\n(12345678901234567890\r\n"},
		{"RESP3 map", "%2\r\n+a\r\n:1\r\n+b\r\n*1\r\n:2\r\n"},
		{"RESP3 set", "~2\r\n+a\r\n+b\r\n"},
		{"RESP3 verbatim", "=8\r\ntxt:text\r\n"},
		{"RESP3 blob error", "!3\r\nERR\r\n"},
		{"RESP3 push", ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n"},
		{"attribute before a value", "|1\r\n+key\r\n+value\r\n:7\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := newReplyReader(strings.NewReader(tt.in + "+NEXT\r\n"))
			raw, err := rr.next()
			if err != nil || string(raw) != tt.in {
				t.Fatalf("next = %q, %v; want %q", raw, err, tt.in)
			}
			got := []byte(tt.in) // next's bytes are only valid until the next call
			if next, err := rr.next(); err != nil || string(next) != "+NEXT\r\n" {
				t.Fatalf("the following reply = %q, %v", next, err)
			}
			v, rest, err := parseValue(got)
			if err != nil || len(rest) != 0 {
				t.Fatalf("parseValue: %v (rest %q)", err, rest)
			}
			if tt.in[0] != '|' && string(appendValue(nil, v)) != tt.in {
				t.Errorf("re-encoded as %q", appendValue(nil, v))
			}
		})
	}
}

func TestReplyReaderRefusesMalformedInput(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
	}{
		{"unknown type", "?1\r\n", errProtocol},
		{"bare LF", "+OK\n", errProtocol},
		{"bad length", "$x\r\n", errProtocol},
		{"negative length", "*-2\r\n", errProtocol},
		{"bulk over the limit", "$536870913\r\n", errProtocol},
		{"bulk without CRLF", "$1\r\nxy\r\n", errProtocol},
		{"truncated bulk", "$10\r\nabc", io.ErrUnexpectedEOF},
		{"truncated array", "*2\r\n:1\r\n", io.EOF},
		{"line too long", "+" + strings.Repeat("a", maxLineLen) + "\r\n", errProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newReplyReader(strings.NewReader(tt.in)).next()
			if !errors.Is(err, tt.want) {
				t.Errorf("next = %v, want %v", err, tt.want)
			}
		})
	}
}

// A declared length is never trusted for allocation: a huge header with no
// payload behind it costs no more than the bytes that actually came.
func TestReplyReaderDoesNotAllocateDeclaredLengths(t *testing.T) {
	rr := newReplyReader(strings.NewReader("$536870912\r\nabc"))
	if _, err := rr.next(); err == nil {
		t.Fatal("a truncated bulk string was accepted")
	}
	if cap(rr.buf) > 2*bulkReadChunk {
		t.Errorf("the reader allocated %d bytes for a 3-byte payload", cap(rr.buf))
	}
}
