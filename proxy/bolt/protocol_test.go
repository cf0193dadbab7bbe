package bolt

import (
	"reflect"
	"testing"

	"github.com/tenantgate/tenantgate/proxy/bolt/packstream"
)

var bolt58 = [4]byte{0, 8, 8, 5}

func TestRouteAdvertisesOnlyTheProxy(t *testing.T) {
	peer := newScriptedPeer(t)
	p := startProxy(t, peer, Options{Advertise: "tenantgate.local:7687"})
	c := dialRaw(t, p.addr, bolt58)
	c.logon(p.token("acme"))
	c.send(msgRoute, kv("address", p.addr), []any{}, kv("db", nil))
	meta := c.expect(msgSuccess)
	rt, _ := meta.Get("rt")
	servers, _ := mapOf(rt).Get("servers")
	roles := map[string]bool{}
	for _, s := range servers.([]any) {
		m := mapOf(s)
		addrs, _ := m.Get("addresses")
		role, _ := stringEntry(m, "role")
		roles[role] = true
		if !reflect.DeepEqual(addrs, []any{"tenantgate.local:7687"}) {
			t.Errorf("role %s lists %v", role, addrs)
		}
	}
	if len(roles) != 3 {
		t.Errorf("roles %v, want ROUTE, READ and WRITE", roles)
	}
}

func TestPipelinedRefusalIsFollowedByIgnored(t *testing.T) {
	peer := newScriptedPeer(t)
	p := startProxy(t, peer, Options{})
	peer.onRun("RETURN 1 AS x", []string{"x"}, []any{int64(1)})
	c := dialRaw(t, p.addr, bolt58)
	c.logon(p.token("acme"))

	// A refused RUN pipelined between allowed ones: replies stay in order,
	// and what follows the refusal is IGNORED until RESET.
	c.send(msgRun, "RETURN 1 AS x", kv(), kv())
	c.send(msgPull, kv("n", int64(-1)))
	c.send(msgRun, "CALL db.labels()", kv(), kv())
	c.send(msgPull, kv("n", int64(-1)))
	c.send(msgRun, "RETURN 1 AS x", kv(), kv("imp_user", "admin"))
	c.send(msgReset)
	c.send(msgRun, "RETURN 1 AS x", kv(), kv("db", "system"))
	c.send(msgReset)

	c.expect(msgSuccess)
	c.expect(msgRecord)
	c.expect(msgSuccess)
	if code := failureCode(c.expect(msgFailure)); code != codeForbidden {
		t.Errorf("procedure: code %q", code)
	}
	c.expect(msgIgnored)
	c.expect(msgIgnored)
	c.expect(msgSuccess) // RESET
	if msg, _ := stringEntry(c.expect(msgFailure), "message"); msg == "" {
		t.Error("database: no message")
	}
	c.expect(msgSuccess) // RESET
	if got := peer.queries(); !reflect.DeepEqual(got, []string{"RETURN 1 AS x"}) {
		t.Errorf("the upstream got %q", got)
	}
}

func TestLogoffLogonSwitchesTenant(t *testing.T) {
	peer := newScriptedPeer(t)
	p := startProxy(t, peer, Options{})
	peer.onRun("MATCH (n:Tenant_acme) RETURN n", []string{"n"}, []any{node(version{5, 8}, 1, []string{"Tenant_acme", "Doc"}, nil)})
	peer.onRun("MATCH (n:Tenant_globex) RETURN n", []string{"n"}, []any{node(version{5, 8}, 2, []string{"Doc", "Tenant_globex"}, nil)})
	c := dialRaw(t, p.addr, bolt58)
	c.logon(p.token("acme"))

	query := func() []any {
		c.send(msgRun, "MATCH (n) RETURN n", kv(), kv())
		c.send(msgPull, kv("n", int64(-1)))
		c.expect(msgSuccess)
		rec := c.recv()
		c.expect(msgSuccess)
		return rec.Fields[0].([]any)[0].(*packstream.Structure).Fields[1].([]any)
	}
	if labels := query(); !reflect.DeepEqual(labels, []any{"Doc"}) {
		t.Errorf("acme sees labels %v", labels)
	}
	c.send(msgLogoff)
	c.expect(msgSuccess)
	c.send(msgLogon, kv("scheme", "basic", "principal", "ignored", "credentials", p.token("globex")))
	c.expect(msgSuccess)
	if labels := query(); !reflect.DeepEqual(labels, []any{"Doc"}) {
		t.Errorf("globex sees labels %v", labels)
	}
	if got := peer.queries(); !reflect.DeepEqual(got, []string{"MATCH (n:Tenant_acme) RETURN n", "MATCH (n:Tenant_globex) RETURN n"}) {
		t.Errorf("the upstream got %q", got)
	}
	if n := len(peer.messages(msgLogon)); n != 2 {
		t.Errorf("the upstream got %d LOGONs, want one per client LOGON", n)
	}

	// Between LOGOFF and LOGON nothing runs.
	c.send(msgLogoff)
	c.expect(msgSuccess)
	c.send(msgRun, "MATCH (n) RETURN n", kv(), kv())
	if code := failureCode(c.expect(msgFailure)); code != codeUnauthorized {
		t.Errorf("RUN after LOGOFF: code %q", code)
	}
}

func TestLoginRefusals(t *testing.T) {
	peer := newScriptedPeer(t)
	p := startProxy(t, peer, Options{})
	for name, auth := range map[string]any{
		"no scheme":      kv("credentials", p.token("acme")),
		"kerberos":       kv("scheme", "kerberos", "credentials", "x"),
		"unknown tenant": kv("scheme", "bearer", "credentials", p.token("initech")),
		"garbage token":  kv("scheme", "bearer", "credentials", "x.y.z"),
	} {
		c := dialRaw(t, p.addr, bolt58)
		c.send(msgHello, kv("user_agent", "raw/1.0"))
		c.expect(msgSuccess)
		c.send(msgLogon, auth)
		if code := failureCode(c.expect(msgFailure)); code != codeUnauthorized {
			t.Errorf("%s: code %q", name, code)
		}
	}
	if n := len(peer.messages(msgLogon)); n != 0 {
		t.Errorf("the upstream got %d LOGONs for refused logins", n)
	}
}

func TestHandshakeWithoutCommonVersion(t *testing.T) {
	peer := newScriptedPeer(t)
	p := startProxy(t, peer, Options{})
	c := dialRaw(t, p.addr, [4]byte{0, 0, 0, 3}, [4]byte{0, 0, 1, 0xFF})
	if c.v.major != 0 {
		t.Errorf("negotiated %v with a Bolt 3 / manifest-only client", c.v)
	}
	only44 := newScriptedPeer(t, version{4, 4})
	p = startProxy(t, only44, Options{})
	if c := dialRaw(t, p.addr, bolt58); c.v.major != 0 {
		t.Errorf("negotiated %v though the upstream speaks only 4.4", c.v)
	}
	if c := dialRaw(t, p.addr, bolt58, [4]byte{0, 2, 4, 4}); c.v != (version{4, 4}) {
		t.Errorf("negotiated %v, want 4.4", c.v)
	}
}

func TestUpstreamErrorsHideTheLabel(t *testing.T) {
	peer := newScriptedPeer(t)
	p := startProxy(t, peer, Options{})
	c := dialRaw(t, p.addr, bolt58)
	c.logon(p.token("acme"))
	c.send(msgRun, "MATCH (n:Undeclared) RETURN n", kv(), kv())
	meta := c.expect(msgFailure)
	msg, _ := stringEntry(meta, "message")
	if msg != "the scripted peer has no answer for: MATCH (n:Undeclared:<tenant>) RETURN n" {
		t.Errorf("the client was told %q", msg)
	}
}

func TestRouteForAnotherDatabaseIsRefused(t *testing.T) {
	peer := newScriptedPeer(t)
	p := startProxy(t, peer, Options{Database: "graph"})
	c := dialRaw(t, p.addr, bolt58)
	c.logon(p.token("acme"))
	c.send(msgRoute, kv(), []any{}, kv("db", "system"))
	if code := failureCode(c.expect(msgFailure)); code != codeForbidden {
		t.Errorf("code %q", code)
	}
	c.send(msgReset)
	c.expect(msgSuccess)
	c.send(msgRoute, kv(), []any{}, kv())
	c.expect(msgSuccess)
	routes := peer.messages(msgRoute)
	if len(routes) != 1 {
		t.Fatalf("the upstream got %d ROUTEs", len(routes))
	}
	if db, _ := stringEntry(mapOf(routes[0].fields[2]), "db"); db != "graph" {
		t.Errorf("ROUTE reached the upstream for database %q, want the configured one", db)
	}
}

// failureCode reads the status code of a FAILURE in either shape.
func failureCode(meta *packstream.Map) string {
	if code, ok := stringEntry(meta, "neo4j_code"); ok {
		return code
	}
	code, _ := stringEntry(meta, "code")
	return code
}
