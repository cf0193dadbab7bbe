package redis

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// chunkReader returns at most n bytes per Read, to exercise commands split
// across reads.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.data))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

// readAll reads every command until an error, copying the args (they are
// valid only until the next read).
func readAll(rr *requestReader) ([][]string, error) {
	var out [][]string
	for {
		cmds, err := rr.readCommands()
		for _, c := range cmds {
			args := make([]string, len(c.Args))
			for i, a := range c.Args {
				args[i] = string(a)
			}
			out = append(out, args)
		}
		if err != nil {
			return out, err
		}
	}
}

func TestRequestReader(t *testing.T) {
	big := strings.Repeat("v", 100<<10) // larger than the initial buffer
	var stream []byte
	stream = appendRESP(stream, "SET", "k", "a\r\nb")
	stream = append(stream, "*0\r\n"...)
	stream = append(stream, "PING\r\n"...)
	stream = append(stream, "set \"q k\" 'x y'\n"...)
	stream = append(stream, "\r\n"...)
	stream = appendRESP(stream, "SET", "big", big)
	stream = appendRESP(stream, "GET", "")
	want := [][]string{{"SET", "k", "a\r\nb"}, {"PING"}, {"set", "q k", "x y"}, {"SET", "big", big}, {"GET", ""}}
	for _, chunk := range []int{1, 7, 4096, len(stream)} {
		rr := newRequestReader(&chunkReader{data: slices.Clone(stream), n: chunk})
		got, err := readAll(rr)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("chunks of %d: %v", chunk, err)
		}
		if !slices.EqualFunc(got, want, slices.Equal[[]string]) {
			t.Fatalf("chunks of %d: got %d commands %.80q, want %.80q", chunk, len(got), got, want)
		}
		if len(rr.buf) > maxRetainedBuffer {
			t.Fatalf("chunks of %d: the reader keeps a %d-byte buffer after the big value", chunk, len(rr.buf))
		}
	}
}

// TestRequestReaderErrors: a malformed request is an error, after the
// complete commands before it.
func TestRequestReaderErrors(t *testing.T) {
	for _, tc := range []struct{ stream, err string }{
		{"*1\r\n$4\r\nPING\r\n*x\r\n", "invalid multibulk length"},
		{"*1\r\n$4\r\nPING\r\n*2\r\n+OK\r\n", "expected '$', got '+'"},
		{"*1\r\n$4\r\nPING\r\n*1\r\n$-1\r\n", "invalid bulk length"},
		{"*1\r\n$4\r\nPING\r\n*1\r\n$999999999999\r\n", "invalid bulk length"},
		{"*1\r\n$4\r\nPING\r\n*99999999\r\n", "invalid multibulk length"},
		{"*1\r\n$4\r\nPING\r\nset \"unbalanced\n", "unbalanced"},
		{"*1\r\n$4\r\nPING\r\n" + strings.Repeat("x", maxInlineLen+1), "too big inline request"},
	} {
		got, err := readAll(newRequestReader(&chunkReader{data: []byte(tc.stream), n: 3}))
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%.40q: error %v, want %q", tc.stream, err, tc.err)
		}
		if len(got) != 1 || got[0][0] != "PING" {
			t.Errorf("%.40q: commands before the error: %q, want the PING", tc.stream, got)
		}
	}
}

// FuzzRequestReader: no input panics or makes the reader hold much more
// than it was sent, and every multibulk command it returns is the one
// its own encoding gives back.
func FuzzRequestReader(f *testing.F) {
	f.Add(appendRESP(appendRESP(nil, "SET", "k", "v"), "GET", "k"), 3)
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset 'a b' \"c\\n\"\n"), 1)
	f.Add([]byte("*1\r\n$100000\r\nabc"), 5)
	f.Fuzz(func(t *testing.T, data []byte, chunk int) {
		chunk = max(1, chunk%64+1)
		rr := newRequestReader(&chunkReader{data: slices.Clone(data), n: chunk})
		for {
			cmds, err := rr.readCommands()
			if len(rr.buf) > 2*len(data)+requestBufferSize {
				t.Fatalf("a %d-byte input grew the buffer to %d", len(data), len(rr.buf))
			}
			for _, c := range cmds {
				if len(c.Args) == 0 {
					t.Fatal("a command without arguments")
				}
				if c.Raw[0] != '*' {
					continue
				}
				strs := make([]string, len(c.Args))
				for i, a := range c.Args {
					strs[i] = string(a)
				}
				again, _ := readAll(newRequestReader(bytes.NewReader(appendRESP(nil, strs...))))
				if len(again) != 1 || !slices.Equal(again[0], strs) {
					t.Fatalf("%q re-encoded reads back as %q", strs, again)
				}
			}
			if err != nil {
				return
			}
		}
	})
}

// TestMalformedRequestEndsTheConnection: as Redis does, the proxy answers
// the commands before a malformed request, then a protocol error, then
// closes the connection.
func TestMalformedRequestEndsTheConnection(t *testing.T) {
	p := startProxy(t, tenants(1)...)
	for stream, want := range map[string]string{
		"PING\r\n*x\r\n":               "-ERR Protocol error: invalid multibulk length\r\n",
		"PING\r\nset \"unbalanced\r\n": "-ERR Protocol error: unbalanced quotes in request\r\n",
	} {
		c := dialRaw(t, p)
		if _, err := c.conn.Write([]byte(stream)); err != nil {
			t.Fatal(err)
		}
		if got := c.read(); got != "+PONG\r\n" {
			t.Errorf("%q: first reply %q, want +PONG", stream, got)
		}
		if got := c.read(); got != want {
			t.Errorf("%q: second reply %q, want %q", stream, got, want)
		}
		if _, err := c.r.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("%q: the connection stays open (%v)", stream, err)
		}
	}
}
