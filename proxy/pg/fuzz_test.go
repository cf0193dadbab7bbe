package pg

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"

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

// FuzzMessageReaderNonBlocking: the event loop's reader (tryNext, fed in
// arbitrary pieces with nothing-yet answers in between, messages larger than
// its buffer included) returns the same messages and the same final error as
// the blocking reader on the whole stream, and never more than the bound.
// Each frame is appended to once read, as the engine does when it puts a
// canned answer after a relayed one: that must not change what follows.
func FuzzMessageReaderNonBlocking(f *testing.F) {
	var msgs []byte
	msgs = encodeMsg(msgs, &pgproto3.Query{String: "SELECT 1"})
	msgs = encodeMsg(msgs, &pgproto3.Parse{Query: strings.Repeat("x", 40)})
	msgs = encodeMsg(msgs, &pgproto3.Sync{})
	f.Add(msgs, []byte{0, 3, 200, 7})
	f.Add([]byte{'Q', 0, 0, 0, 3}, []byte{1})
	f.Add([]byte{'Q', 0x7f, 0xff, 0xff, 0xff, 0}, []byte{})
	const bound = 1 << 20
	f.Fuzz(func(t *testing.T, data, chunks []byte) {
		type message struct {
			frame string
			err   string
		}
		var want []message
		rd := newMsgReader(bytes.NewReader(data), bound)
		for {
			_, frame, _, err := rd.next()
			if err != nil {
				want = append(want, message{err: err.Error()})
				break
			}
			want = append(want, message{frame: string(frame)})
		}
		// A 16-byte buffer: most messages are larger and put together in
		// pieces, as messages over 32 KiB are by the engine's readers; with
		// 4 KiB most are returned where they lie in the buffer.
		for _, size := range []int{16, 4 << 10} {
			var got []message
			nb := newMsgReaderSize(&chunkedSource{data: data, chunks: chunks}, bound, size)
			for tries := 0; ; tries++ {
				if tries > 4*len(data)+16 {
					t.Fatalf("no progress after %d reads", tries)
				}
				_, frame, body, ok, err := nb.tryNext()
				if err != nil {
					got = append(got, message{err: err.Error()})
					break
				}
				if !ok {
					continue
				}
				if len(body) > bound {
					t.Fatalf("message of %d bytes", len(body))
				}
				got = append(got, message{frame: string(frame)})
				_ = append(frame, "appended"...)
			}
			if len(got) != len(want) {
				t.Fatalf("buffer %d: %d messages and errors, want %d", size, len(got), len(want))
			}
			for i := range want {
				// The final error may differ in wording only between a
				// clean and a truncated end of stream.
				if got[i].frame != want[i].frame || (got[i].err == "") != (want[i].err == "") {
					t.Fatalf("buffer %d, message %d: %q %q, want %q %q", size, i, got[i].frame, got[i].err, want[i].frame, want[i].err)
				}
			}
		}
	})
}
