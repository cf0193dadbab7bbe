package redis

import (
	"bytes"
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
