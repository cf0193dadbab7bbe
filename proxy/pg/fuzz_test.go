package pg

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tenantgate/tenantgate/proxy"
)

// FuzzGuard: the guard never panics, and a text it allows stays allowed
// when a comment is added in front (the verdict follows the parse tree, not
// the spelling).
func FuzzGuard(f *testing.F) {
	for _, tc := range guardCases {
		f.Add(tc.sql)
	}
	g := newTestGuard(true, false)
	f.Fuzz(func(t *testing.T, sql string) {
		v := g.Check(sql)
		if v.Refusal != nil {
			return
		}
		if w := g.Check("/* fuzz */ " + sql); w.Refusal != nil && w.Refusal.Rule != RuleUnparsable {
			t.Fatalf("%q allowed, but refused with a leading comment: %v", sql, w.Refusal)
		}
	})
}

// FuzzClientMessages feeds arbitrary bytes to the client-side decoders: the
// startup packet reader and parameter checks, the message framer with its
// length bound, and the per-message decoding the session does. Nothing
// panics, and no message larger than the bound is ever allocated.
func FuzzClientMessages(f *testing.F) {
	startup := binary.BigEndian.AppendUint32(nil, 0)
	startup = binary.BigEndian.AppendUint32(startup, protoVersion)
	startup = append(startup, "user\x00app\x00database\x00db\x00options\x00-c x=y\x00\x00"...)
	binary.BigEndian.PutUint32(startup, uint32(len(startup)))
	f.Add(startup)
	var msgs []byte
	msgs = encodeMsg(msgs, &pgproto3.Parse{Name: "s1", Query: "SELECT $1", ParameterOIDs: []uint32{23}})
	msgs = encodeMsg(msgs, &pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s1", Parameters: [][]byte{[]byte("1")}})
	msgs = encodeMsg(msgs, &pgproto3.Describe{ObjectType: 'S', Name: "s1"})
	msgs = encodeMsg(msgs, &pgproto3.Execute{Portal: "p"})
	msgs = encodeMsg(msgs, &pgproto3.Close{ObjectType: 'S', Name: "s1"})
	msgs = encodeMsg(msgs, &pgproto3.Query{String: "SELECT 1"})
	msgs = encodeMsg(msgs, &pgproto3.Sync{})
	f.Add(msgs)
	f.Add([]byte{'Q', 0x7f, 0xff, 0xff, 0xff})

	e := &Engine{opts: Options{Databases: []string{"db"}}, allowed: map[string]bool{"application_name": true}}
	const bound = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		if body, err := readStartup(bytes.NewReader(data)); err == nil {
			if len(body)+4 > maxStartupLen {
				t.Fatalf("startup packet of %d bytes accepted", len(body))
			}
			_, _, _ = e.checkStartup(body)
		}
		rd := newMsgReader(bytes.NewReader(data), bound)
		for {
			typ, frame, body, err := rd.next()
			if err != nil {
				return
			}
			if len(body) > bound || len(frame) != len(body)+5 {
				t.Fatalf("frame of %d bytes, body %d", len(frame), len(body))
			}
			switch typ {
			case 'Q':
				_, _, _ = cstring(body)
			case 'P':
				var p pgproto3.Parse
				_ = p.Decode(body)
			case 'B':
				if portal, stmt, ok := decodeBind(body); ok {
					out := withStatementName(nil, 'B', body, len(portal)+1, len(stmt), "tenantgate_x")
					p2, s2, ok := decodeBind(out[5:])
					if !ok || p2 != portal || s2 != "tenantgate_x" {
						t.Fatalf("renamed Bind decodes as %q %q %v", p2, s2, ok)
					}
				}
			case 'C':
				var c pgproto3.Close
				_ = c.Decode(body)
			}
		}
	})
}

// chunkedSource gives its data in the sizes chunks says, answering
// proxy.ErrWouldBlock between two chunks, as a non-blocking socket does.
type chunkedSource struct {
	data   []byte
	chunks []byte
	paused bool
}

func (s *chunkedSource) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	if s.paused = !s.paused; !s.paused {
		return 0, proxy.ErrWouldBlock
	}
	n := len(s.data)
	if len(s.chunks) > 0 {
		n = min(n, int(s.chunks[0])+1)
		s.chunks = s.chunks[1:]
	}
	n = copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

// FuzzMessageReader: the reader returns the messages of a stream, and then
// one error, as splitting the stream by its length fields does, whether it
// reads the stream blocking (whole, or a byte at a time) or with tryNext, fed
// in arbitrary pieces with nothing-yet answers in between, messages larger
// than its buffer included; it never returns more than the bound. Each frame
// is appended to once read, as the engine does when it puts a canned answer
// after a relayed one: that must not change what follows.
func FuzzMessageReader(f *testing.F) {
	var msgs []byte
	msgs = encodeMsg(msgs, &pgproto3.Query{String: "SELECT 1"})
	msgs = encodeMsg(msgs, &pgproto3.Parse{Query: strings.Repeat("x", 40)})
	msgs = encodeMsg(msgs, &pgproto3.Sync{})
	f.Add(msgs, []byte{0, 3, 200, 7})
	f.Add([]byte{'Q', 0, 0, 0, 3}, []byte{1})
	f.Add([]byte{'Q', 0x7f, 0xff, 0xff, 0xff, 0}, []byte{})
	const bound = 1 << 20
	f.Fuzz(func(t *testing.T, data, chunks []byte) {
		want := splitFrames(data, bound)
		check := func(name string, next func() (frame []byte, ok bool, err error)) {
			var got []string
			for tries := 0; ; tries++ {
				if tries > 4*len(data)+16 {
					t.Fatalf("%s: no progress after %d reads", name, tries)
				}
				frame, ok, err := next()
				if err != nil {
					break // every stream ends in an error: its end, or a bad length
				}
				if !ok {
					continue
				}
				if len(frame) > bound+5 {
					t.Fatalf("%s: message of %d bytes", name, len(frame))
				}
				got = append(got, string(frame))
				_ = append(frame, "appended"...)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: %d messages %q, want %d %q", name, len(got), got, len(want), want)
			}
		}
		blocking := func(r io.Reader) func() ([]byte, bool, error) {
			rd := newMsgReader(r, bound)
			return func() ([]byte, bool, error) {
				_, frame, _, err := rd.next()
				return frame, err == nil, err
			}
		}
		check("next", blocking(bytes.NewReader(data)))
		check("next, a byte at a time", blocking(iotest.OneByteReader(bytes.NewReader(data))))
		// A 16-byte buffer: most messages are larger and put together in
		// pieces, as messages over 32 KiB are by the engine's readers; with
		// 4 KiB most are returned where they lie in the buffer.
		for _, size := range []int{16, 4 << 10} {
			rd := newMsgReaderSize(&chunkedSource{data: data, chunks: chunks}, bound, size)
			check(fmt.Sprintf("tryNext, %d-byte buffer", size), func() ([]byte, bool, error) {
				_, frame, _, ok, err := rd.tryNext()
				return frame, ok, err
			})
		}
	})
}

// splitFrames splits a stream into its messages by their length fields, as
// far as they are whole and within bound.
func splitFrames(data []byte, bound int) []string {
	var frames []string
	for len(data) >= 5 {
		n := int(binary.BigEndian.Uint32(data[1:5]))
		if n < 4 || n-4 > bound || len(data) < n+1 {
			break
		}
		frames = append(frames, string(data[:n+1]))
		data = data[n+1:]
	}
	return frames
}
