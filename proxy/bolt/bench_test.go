package bolt

import "testing"

// BenchmarkRelayRoundTrip measures a RUN + PULL round trip through the
// proxy to the scripted peer: decode, rewrite (cached), re-encode, relay,
// and removal of the tenant label from one node record.
func BenchmarkRelayRoundTrip(b *testing.B) {
	peer := newScriptedPeer(b)
	p := startProxy(b, peer, Options{})
	peer.onRun("MATCH (n:base:Tenant_acme {entity_id: $id}) RETURN n", []string{"n"},
		[]any{node(version{5, 8}, 1, []string{"base", "Tenant_acme"}, map[string]any{"entity_id": "x"})})
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
}
