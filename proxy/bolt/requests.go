package bolt

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tenantgate/tenantgate/proxy"
	"github.com/tenantgate/tenantgate/proxy/bolt/cypher"
	"github.com/tenantgate/tenantgate/proxy/bolt/packstream"
)

// readRequests is the reader loop. flush reports whether queued replies
// must still be delivered (a refusal that ends the session).
func (c *clientSession) readRequests() (flush bool, err error) {
	for {
		msg, err := c.fromClient.read()
		if err != nil {
			return false, err
		}
		c.mu.Lock()
		c.outstanding++ // every message but GOODBYE gets exactly one reply
		c.mu.Unlock()
		tag, err := tagOf(msg)
		if err != nil {
			return c.refuseAndClose(reasonProtocol, codeProtocol, err.Error())
		}
		if c.failed && tag != msgReset && tag != msgGoodbye {
			c.replies <- reply{local: ignored}
			continue
		}
		if !c.helloDone && tag != msgHello {
			return c.refuseAndClose(proxy.ReasonNotAuthenticated, codeUnauthorized, "send HELLO first")
		}
		if c.helloDone && !c.loggedOn && !slices.Contains([]byte{msgLogon, msgGoodbye, msgReset}, tag) {
			return c.refuseAndClose(proxy.ReasonNotAuthenticated, codeUnauthorized, "authenticate with LOGON first")
		}
		var done bool
		switch tag {
		case msgHello:
			done, err = c.hello(msg)
		case msgLogon:
			done, err = c.logon(msg)
		case msgLogoff:
			c.loggedOn = false
			err = c.forward(msg, reply{})
		case msgRun, msgBegin:
			err = c.scopedStatement(tag, msg)
		case msgRoute:
			err = c.route(msg)
		case msgReset:
			c.failed = false
			c.setTransaction(false, false)
			err = c.forward(msg, reply{})
		case msgCommit, msgRollback:
			c.setTransaction(false, false)
			err = c.forward(msg, reply{label: c.label})
		case msgPull, msgDiscard:
			err = c.forward(msg, reply{label: c.label, stream: true})
		case msgTelemetry:
			err = c.forward(msg, reply{})
		case msgGoodbye:
			_ = c.writeUpstream(msg)
			return false, nil
		default:
			return c.refuseAndClose(reasonProtocol, codeProtocol, fmt.Sprintf("message 0x%02X is not supported by the proxy", tag))
		}
		if done || err != nil {
			return done, err
		}
	}
}

func (c *clientSession) writeUpstream(msg []byte) error {
	_, err := c.up.Write(appendChunked(nil, msg))
	return err
}

func (c *clientSession) forward(msg []byte, r reply) error {
	if err := c.writeUpstream(msg); err != nil {
		return err
	}
	c.replies <- r
	return nil
}

// refuse answers the current request with a FAILURE; Bolt then ignores
// everything until RESET, which the reader emulates.
func (c *clientSession) refuse(reason, code, message string, statement []byte) {
	c.s.Refuse(reason, message, statement)
	c.replies <- reply{local: failure(c.version, code, message)}
	c.failed = true
}

func (c *clientSession) refuseAndClose(reason, code, message string) (bool, error) {
	c.refuse(reason, code, message, nil)
	return true, fmt.Errorf("bolt: %s", message)
}

// authFailed answers a refused login and ends the session, as Neo4j does.
func (c *clientSession) authFailed(err error) (bool, error) {
	c.replies <- reply{local: failure(c.version, codeUnauthorized, "authentication failed: "+err.Error())}
	return true, err
}

// login verifies the client's auth map and binds the session's tenant.
func (c *clientSession) login(auth *packstream.Map) error {
	token, err := tokenFrom(auth)
	if err != nil {
		c.s.Refuse(proxy.ReasonNotAuthenticated, err.Error(), nil)
		return err
	}
	id, err := c.s.Authenticate(c.s.Context(), token)
	if err != nil {
		return err
	}
	if c.e.perTenant {
		db, err := c.e.databases.name(id.Tenant)
		if err != nil {
			c.s.Refuse(reasonDatabase, err.Error(), nil)
			return err
		}
		c.tenantDB = db
	}
	c.tenant, c.label = id.Tenant, c.e.rewriter.Label(id.Tenant)
	c.loggedOn = true
	return nil
}

// upstreamAuth is the proxy's own credentials as an auth map.
func (c *clientSession) upstreamAuth(m *packstream.Map) {
	m.Set("scheme", "basic")
	m.Set("principal", c.e.username)
	m.Set("credentials", c.e.password)
}

func (c *clientSession) hello(msg []byte) (bool, error) {
	if c.helloDone {
		return c.refuseAndClose(reasonProtocol, codeProtocol, "HELLO was already sent")
	}
	st, err := packstream.DecodeStructure(msg, packstream.DefaultLimits)
	if err != nil {
		return c.refuseAndClose(reasonProtocol, codeProtocol, err.Error())
	}
	extra, err := mapField(st, 0, "HELLO")
	if err != nil {
		return c.refuseAndClose(reasonProtocol, codeProtocol, err.Error())
	}
	up := &packstream.Map{}
	for i, k := range extra.Keys {
		if !slices.Contains(authKeys, k) {
			up.Set(k, extra.Values[i])
		}
	}
	if !c.version.atLeast(5, 1) {
		if err := c.login(extra); err != nil {
			return c.authFailed(err)
		}
		c.upstreamAuth(up)
	}
	c.helloDone = true
	return false, c.forward(encode(msgHello, up), reply{})
}

func (c *clientSession) logon(msg []byte) (bool, error) {
	if !c.version.atLeast(5, 1) || c.loggedOn {
		return c.refuseAndClose(reasonProtocol, codeProtocol, "LOGON is not expected here")
	}
	st, err := packstream.DecodeStructure(msg, packstream.DefaultLimits)
	if err != nil {
		return c.refuseAndClose(reasonProtocol, codeProtocol, err.Error())
	}
	auth, err := mapField(st, 0, "LOGON")
	if err != nil {
		return c.refuseAndClose(reasonProtocol, codeProtocol, err.Error())
	}
	if err := c.login(auth); err != nil {
		return c.authFailed(err)
	}
	up := &packstream.Map{}
	c.upstreamAuth(up)
	return false, c.forward(encode(msgLogon, up), reply{})
}

// checkExtra enforces the database and impersonation rules on the extra
// map of RUN, BEGIN and ROUTE, and pins the configured database.
func (c *clientSession) checkExtra(extra *packstream.Map) (reason, message string) {
	if v, ok := extra.Get("imp_user"); ok && v != nil {
		return reasonImpersonation, "impersonation (imp_user) is not allowed through the proxy"
	}
	if c.e.perTenant {
		// Database mode: the tenant's database, whatever the client asked
		// for among the names it may use.
		if v, ok := extra.Get("db"); ok && v != nil {
			if name, _ := v.(string); name != "" && name != c.tenantDB && (c.e.database == "" || name != c.e.database) {
				return reasonDatabase, fmt.Sprintf("database %q is not available through this proxy", name)
			}
		}
		extra.Set("db", c.tenantDB)
		return "", ""
	}
	if v, ok := extra.Get("db"); ok && v != nil {
		name, _ := v.(string)
		if !c.databaseAllowed(name) {
			return reasonDatabase, fmt.Sprintf("database %q is not available through this proxy", name)
		}
	}
	if c.e.database != "" {
		extra.Set("db", c.e.database)
	}
	return "", ""
}

func (c *clientSession) databaseAllowed(name string) bool {
	if c.e.database != "" {
		return name == c.e.database
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.databases, name)
}

func (c *clientSession) learnDatabase(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.databases, name) && len(c.databases) < 8 {
		c.databases = append(c.databases, name)
	}
}

// scopedStatement decodes RUN or BEGIN, checks its extra map, rewrites the
// query of RUN, and forwards the re-encoded message.
func (c *clientSession) scopedStatement(tag byte, msg []byte) error {
	start := time.Now()
	st, err := packstream.DecodeStructure(msg, packstream.DefaultLimits)
	if err != nil {
		c.refuse(reasonProtocol, codeProtocol, err.Error(), nil)
		return nil
	}
	extraField, what := 0, "BEGIN"
	if tag == msgRun {
		extraField, what = 2, "RUN"
	}
	extra, err := mapField(st, extraField, what)
	if err != nil {
		c.refuse(reasonProtocol, codeProtocol, err.Error(), nil)
		return nil
	}
	if reason, message := c.checkExtra(extra); reason != "" {
		c.refuse(reason, codeForbidden, message, nil)
		return nil
	}
	st.Fields[extraField] = extra
	if tag == msgRun {
		query, ok := st.Fields[0].(string)
		if !ok {
			c.refuse(reasonProtocol, codeProtocol, "RUN needs a query string", nil)
			return nil
		}
		tenant := c.tenant
		if c.e.perTenant {
			tenant = "" // the check does not depend on the tenant: share the cache
		}
		rewritten, err := c.e.rewrite(query, tenant)
		if err != nil {
			c.refuseStatement(query, err)
			return nil
		}
		st.Fields[0] = rewritten
	}
	if err := c.forward(encode(tag, st.Fields...), reply{label: c.label, learn: true}); err != nil {
		return err
	}
	c.mu.Lock()
	if tag == msgBegin {
		c.inTx = true
	} else if !c.inTx {
		c.streamOpen = true
	}
	c.mu.Unlock()
	c.s.Requests().Rewritten(time.Since(start))
	return nil
}

func (c *clientSession) refuseStatement(query string, err error) {
	var ce *cypher.Error
	if !errors.As(err, &ce) {
		c.refuse(string(cypher.ReasonSyntax), codeSyntax, err.Error(), []byte(query))
		return
	}
	code := codeForbidden
	if ce.IsSyntax() {
		code = codeSyntax
	}
	c.refuse(string(ce.Reason), code, ce.Message, []byte(query))
}

// route forwards ROUTE with the database pinned; the writer rewrites the
// routing table so that every address is the proxy's.
func (c *clientSession) route(msg []byte) error {
	st, err := packstream.DecodeStructure(msg, packstream.DefaultLimits)
	if err != nil {
		c.refuse(reasonProtocol, codeProtocol, err.Error(), nil)
		return nil
	}
	extra, err := mapField(st, 2, "ROUTE")
	if err != nil {
		c.refuse(reasonProtocol, codeProtocol, err.Error(), nil)
		return nil
	}
	if reason, message := c.checkExtra(extra); reason != "" {
		c.refuse(reason, codeForbidden, message, nil)
		return nil
	}
	st.Fields[2] = extra
	return c.forward(encode(msgRoute, st.Fields...), reply{route: true, learn: true})
}
