package bolt

import (
	"fmt"
	"testing"
)

// BenchmarkRelayRoundTrip measures a RUN + PULL round trip through the
// proxy to the scripted peer: decode, rewrite (cached), re-encode, relay,
// and removal of the tenant label from one node record. In database mode
// the statement is checked (cached) and db set; no label to remove.
func BenchmarkRelayRoundTrip(b *testing.B) {
	for _, mode := range []string{"label", "database"} {
		b.Run(mode, func(b *testing.B) {
			peer := newScriptedPeer(b)
			p := startProxy(b, peer, Options{Mode: mode})
			upstreamQuery := "MATCH (n:base {entity_id: $id}) RETURN n"
			labels := []string{"base"}
			if mode == "label" {
				upstreamQuery = "MATCH (n:base:Tenant_acme {entity_id: $id}) RETURN n"
				labels = append(labels, "Tenant_acme")
			}
			peer.onRun(upstreamQuery, []string{"n"},
				[]any{node(version{5, 8}, 1, labels, map[string]any{"entity_id": "x"})})
			c := dialRaw(b, p.addr, bolt58)
			c.logon(p.token("acme"))
			b.ReportAllocs()
			for b.Loop() {
				c.send(msgRun, "MATCH (n:base {entity_id: $id}) RETURN n", kv("id", "x"), kv())
				c.send(msgPull, kv("n", int64(-1)))
				c.expect(msgSuccess)
				c.expect(msgRecord)
				c.expect(msgSuccess)
			}
		})
	}
}

// BenchmarkRelayThroughput measures relay throughput: each iteration
// pipelines 16 RUN + PULL pairs (the way drivers batch), each answered
// with 100 node records that carry the tenant label. "proxy" goes through
// the proxy, which rewrites (cached) and strips the label from every
// record; "direct" sends the rewritten statement to the scripted peer
// itself, as the baseline. Client, proxy and peer share the machine, and
// the client decodes every record, so the difference is the proxy's cost.
// It reports records and statements per second.
func BenchmarkRelayThroughput(b *testing.B) {
	const pipeline, perResult = 16, 100
	for _, via := range []string{"proxy", "direct"} {
		b.Run(via, func(b *testing.B) {
			peer := newScriptedPeer(b)
			p := startProxy(b, peer, Options{})
			records := make([][]any, perResult)
			for i := range records {
				records[i] = []any{node(version{5, 8}, int64(i), []string{"base", "Tenant_acme"},
					map[string]any{"entity_id": fmt.Sprintf("entity-%d", i), "description": "a LightRAG-shaped entity description of some length", "source_id": "chunk-1<SEP>chunk-2"})}
			}
			const rewritten = "MATCH (n:base:Tenant_acme) RETURN n LIMIT $k"
			peer.onRun(rewritten, []string{"n"}, records...)
			var c *rawClient
			query := "MATCH (n:base) RETURN n LIMIT $k"
			if via == "proxy" {
				c = dialRaw(b, p.addr, bolt58)
				c.logon(p.token("acme"))
			} else {
				c = dialRaw(b, peer.ln.Addr().String(), bolt58)
				c.send(msgHello, kv("user_agent", "raw/1.0"))
				c.expect(msgSuccess)
				c.send(msgLogon, kv("scheme", "basic", "principal", peer.username, "credentials", peer.password))
				c.expect(msgSuccess)
				query = rewritten
			}
			b.ReportAllocs()
			for b.Loop() {
				for range pipeline {
					c.send(msgRun, query, kv("k", int64(perResult)), kv())
					c.send(msgPull, kv("n", int64(-1)))
				}
				for range pipeline {
					c.expect(msgSuccess)
					for range perResult {
						c.expect(msgRecord)
					}
					c.expect(msgSuccess)
				}
			}
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*pipeline*perResult)/secs, "records/s")
			b.ReportMetric(float64(b.N*pipeline)/secs, "statements/s")
		})
	}
}

// BenchmarkRewriteCached is the cost of a statement the engine has seen
// before (per tenant and text): a map lookup under a mutex.
func BenchmarkRewriteCached(b *testing.B) {
	e, err := New(Options{Upstream: "bolt://127.0.0.1:1", Advertise: "127.0.0.1:1"})
	if err != nil {
		b.Fatal(err)
	}
	const q = "MATCH (source:base {entity_id: $source_entity_id}) WITH source MATCH (target:base {entity_id: $target_entity_id}) MERGE (source)-[r:DIRECTED]-(target) SET r += $properties RETURN r, source, target"
	if _, err := e.rewrite(q, "acme"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = e.rewrite(q, "acme")
	}
}
