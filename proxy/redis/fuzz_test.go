package redis

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzReplyReader feeds arbitrary upstream bytes to the reply reader, the
// decoder and every reply rewriter: none may panic, and a reply must be
// decodable exactly when the reader accepted it.
func FuzzReplyReader(f *testing.F) {
	for _, seed := range []string{
		"+OK\r\n", "-ERR x\r\n", ":1\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*-1\r\n", "_\r\n",
		"*2\r\n$1\r\n0\r\n*2\r\n$8\r\nt:acme:a\r\n$1\r\nb\r\n",
		"%1\r\n$8\r\nt:acme:s\r\n*0\r\n", ">3\r\n$7\r\nmessage\r\n$9\r\nt:acme:ch\r\n$1\r\nx\r\n",
		"|1\r\n+a\r\n+b\r\n:1\r\n", "=7\r\ntxt:abc\r\n", "*99999999999\r\n", "$536870913\r\n",
	} {
		f.Add([]byte(seed))
	}
	sc := newTenantScope(DefaultKeyPrefix, "acme")
	f.Fuzz(func(t *testing.T, data []byte) {
		rr := newReplyReader(bytes.NewReader(data))
		raw, err := rr.next()
		checkReplyScanner(t, data, raw, err)
		if err != nil {
			return
		}
		if _, _, err := parseValue(raw); err != nil {
			t.Fatalf("reader accepted %q, decoder refused it: %v", raw, err)
		}
		// The shared connection's reader appends replies to what a batch
		// already holds: the same reply, after the earlier bytes.
		appended, err := newReplyReader(bytes.NewReader(data)).appendNext([]byte("earlier"))
		if err != nil || string(appended) != "earlier"+string(raw) {
			t.Fatalf("appendNext = %q, %v; want earlier%q", appended, err, raw)
		}
		exec := []replyKind{replyNameList, replyScan, replyFirstKey, replyStreams, replyOK}
		for kind := replyRaw; kind <= replyExecAbort; kind++ {
			if _, err := rewriteReply(nil, kind, exec, raw, sc); err != nil {
				t.Fatalf("rewrite %d of %q: %v", kind, raw, err)
			}
		}
	})
}

// checkReplyScanner checks that the event loop's scanner agrees with the
// reply reader on data: the same reply length when the reader accepted
// one, an error when the reader met a protocol error, "not complete yet"
// when the reader ran out of bytes; and the same answer when the bytes
// arrive one at a time.
func checkReplyScanner(t *testing.T, data, raw []byte, readErr error) {
	t.Helper()
	n, err := (&replyScanner{}).next(data)
	switch {
	case readErr == nil && (err != nil || n != len(raw)):
		t.Fatalf("scanner on %q = %d, %v; the reader read %d bytes", data, n, err, len(raw))
	case errors.Is(readErr, errProtocol) && err == nil:
		t.Fatalf("scanner on %q = %d; the reader refused it: %v", data, n, readErr)
	case readErr != nil && !errors.Is(readErr, errProtocol) && (err != nil || n != 0):
		t.Fatalf("scanner on %q = %d, %v; the reader ran out of bytes (%v)", data, n, err, readErr)
	}
	var s replyScanner
	for k := 1; k <= len(data); k++ {
		m, e := s.next(data[:k])
		if e != nil || m != 0 || k == len(data) {
			if m != n || (e != nil) != (err != nil) {
				t.Fatalf("scanner on %q byte by byte = %d, %v; at once %d, %v", data, m, e, n, err)
			}
			return
		}
	}
}

// FuzzRewriteCommand plans arbitrary commands, as the client's RESP
// decoder produces them: no panic, and every planned key argument carries
// the prefix in the encoded command.
func FuzzRewriteCommand(f *testing.F) {
	for _, seed := range []string{
		"GET k", "MSET a 1 b 2", "ZUNIONSTORE d 2 a b", "XREAD STREAMS a b 0 0", "SORT l BY w_* GET #",
		"SCAN 0 MATCH * COUNT 1", "EVAL x 0", "OBJECT ENCODING k", "BLMPOP 0 2 a b LEFT", "MIGRATE h 1 \"\" 0 1 KEYS a b",
	} {
		f.Add([]byte(seed))
	}
	table := loadTestTable(f)
	r := newCommandRewriter(table, DefaultKeyPrefix, 0)
	sc := newTenantScope(DefaultKeyPrefix, "acme")
	f.Fuzz(func(t *testing.T, line []byte) {
		args := bytes.Fields(line)
		if len(args) == 0 {
			return
		}
		var p plan
		r.rewriteCommand(sc, args, &p)
		if p.refusal.reason != "" || p.local != nil {
			return
		}
		v, _, err := parseValue(p.appendCommand(nil, sc.prefix))
		if err != nil {
			t.Fatalf("%q encodes to an invalid command: %v", line, err)
		}
		for _, k := range p.keys {
			if !bytes.HasPrefix(v.elems[k].text, sc.prefix) {
				t.Fatalf("%q: key argument %d lacks the prefix", line, k)
			}
		}
	})
}
