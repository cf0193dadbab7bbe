package bolt

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/tenantgate/tenantgate/proxy/bolt/packstream"
)

// scriptedPeer is a Bolt server for tests, in the manner of Neo4j's own
// driver test kits: it negotiates a version, answers each message from a
// declared script, and records every message it receives. It is not a
// database: a RUN whose exact text was not declared fails, so tests pin
// the rewritten statements the upstream must receive.
type scriptedPeer struct {
	t        testing.TB
	ln       net.Listener
	versions []version // accepted, highest first
	username string
	password string

	mu       sync.Mutex
	runs     map[string]scriptedResult
	received []receivedMessage
	conns    int
}

// scriptedResult is the declared answer to one statement.
type scriptedResult struct {
	fields  []any
	records [][]any
}

// receivedMessage is one message the peer got.
type receivedMessage struct {
	conn   int
	tag    byte
	fields []any
}

// upstreamAddresses are what the peer's ROUTE replies advertise; drivers
// behind the proxy must never see them.
var upstreamAddresses = []any{"10.9.9.1:7687", "10.9.9.2:7687"}

func newScriptedPeer(t testing.TB, versions ...version) *scriptedPeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) == 0 {
		versions = supported
	}
	p := &scriptedPeer{t: t, ln: ln, versions: versions, username: "neo4j", password: "upstream-secret", runs: map[string]scriptedResult{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns++
			id := p.conns
			p.mu.Unlock()
			wg.Go(func() {
				defer conn.Close()
				if err := p.serve(conn, id); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					t.Logf("scripted peer connection %d: %v", id, err)
				}
			})
		}
	})
	return p
}

func (p *scriptedPeer) url() string { return "bolt://" + p.ln.Addr().String() }

// onRun declares the answer to a statement, by its exact (rewritten) text.
func (p *scriptedPeer) onRun(query string, fields []string, records ...[]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := make([]any, len(fields))
	for i, name := range fields {
		f[i] = name
	}
	p.runs[query] = scriptedResult{fields: f, records: records}
}

// queries returns the statements of every RUN received, in order.
func (p *scriptedPeer) queries() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, m := range p.received {
		if m.tag == msgRun {
			out = append(out, m.fields[0].(string))
		}
	}
	return out
}

// messages returns the received messages with tag.
func (p *scriptedPeer) messages(tag byte) []receivedMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []receivedMessage
	for _, m := range p.received {
		if m.tag == tag {
			out = append(out, m)
		}
	}
	return out
}

func (p *scriptedPeer) serve(conn net.Conn, id int) error {
	offered, err := readProposals(conn)
	if err != nil {
		return err
	}
	var chosen version
	for _, v := range p.versions {
		if slices.Contains(offered, v) {
			chosen = v
			break
		}
	}
	if _, err := conn.Write(versionReply(chosen)); err != nil || chosen.major == 0 {
		return err
	}
	in := newMessageReader(conn, 1<<20)
	var pending *scriptedResult
	for {
		msg, err := in.read()
		if err != nil {
			return err
		}
		st, err := packstream.DecodeStructure(msg, packstream.DefaultLimits)
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.received = append(p.received, receivedMessage{conn: id, tag: st.Tag, fields: st.Fields})
		p.mu.Unlock()
		var replies [][]byte
		switch st.Tag {
		case msgHello:
			if !chosen.atLeast(5, 1) && !p.credentialsOK(st.Fields[0]) {
				replies = append(replies, failure(chosen, codeUnauthorized, "bad upstream credentials"))
				break
			}
			server := "Neo4j/5.26.0"
			if chosen.major == 4 {
				server = "Neo4j/4.4.30"
			}
			replies = append(replies, success(map[string]any{"server": server, "connection_id": fmt.Sprintf("bolt-%d", id)}))
		case msgLogon:
			if !p.credentialsOK(st.Fields[0]) {
				replies = append(replies, failure(chosen, codeUnauthorized, "bad upstream credentials"))
				break
			}
			replies = append(replies, success(nil))
		case msgRun:
			p.mu.Lock()
			res, ok := p.runs[st.Fields[0].(string)]
			p.mu.Unlock()
			if !ok {
				replies = append(replies, failure(chosen, codeSyntax, "the scripted peer has no answer for: "+st.Fields[0].(string)))
				break
			}
			pending = &res
			replies = append(replies, success(map[string]any{"fields": res.fields, "t_first": int64(0)}))
		case msgPull:
			if pending != nil {
				for _, r := range pending.records {
					replies = append(replies, encode(msgRecord, r))
				}
			}
			pending = nil
			replies = append(replies, success(map[string]any{"has_more": false, "t_last": int64(0), "type": "rw", "db": "neo4j"}))
		case msgDiscard:
			pending = nil
			replies = append(replies, success(map[string]any{"has_more": false}))
		case msgCommit:
			replies = append(replies, success(map[string]any{"bookmark": "bm:1"}))
		case msgRoute:
			servers := []any{}
			for _, role := range []string{"WRITE", "READ", "ROUTE"} {
				servers = append(servers, &packstream.Map{Keys: []string{"addresses", "role"}, Values: []any{upstreamAddresses, role}})
			}
			// Like Neo4j, the table names the database asked for, or the
			// home database.
			db := "neo4j"
			if extra, ok := st.Fields[2].(*packstream.Map); ok {
				if name, ok := stringEntry(extra, "db"); ok && name != "" {
					db = name
				}
			}
			rt := &packstream.Map{Keys: []string{"ttl", "db", "servers"}, Values: []any{int64(300), db, servers}}
			replies = append(replies, success(map[string]any{"rt": rt}))
		case msgGoodbye:
			return nil
		default: // BEGIN, ROLLBACK, RESET, LOGOFF, TELEMETRY
			replies = append(replies, success(nil))
		}
		var out []byte
		for _, r := range replies {
			out = appendChunked(out, r)
		}
		if _, err := conn.Write(out); err != nil {
			return err
		}
	}
}

func (p *scriptedPeer) credentialsOK(auth any) bool {
	m, ok := auth.(*packstream.Map)
	if !ok {
		return false
	}
	scheme, _ := stringEntry(m, "scheme")
	user, _ := stringEntry(m, "principal")
	pass, _ := stringEntry(m, "credentials")
	return scheme == "basic" && user == p.username && pass == p.password
}

func success(meta map[string]any) []byte {
	m := &packstream.Map{}
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		m.Set(k, meta[k])
	}
	return encode(msgSuccess, m)
}

// node builds a Node structure in the shape of version v.
func node(v version, id int64, labels []string, props map[string]any) *packstream.Structure {
	l := make([]any, len(labels))
	for i, x := range labels {
		l[i] = x
	}
	m := &packstream.Map{}
	for _, k := range slices.Sorted(maps.Keys(props)) {
		m.Set(k, props[k])
	}
	fields := []any{id, l, m}
	if v.major >= 5 {
		fields = append(fields, fmt.Sprintf("4:db:%d", id))
	}
	return &packstream.Structure{Tag: packstream.TagNode, Fields: fields}
}
