// Package proxy holds what every protocol engine shares: the listener that
// accepts client connections, the session table that knows which tenant each
// connection proved, Prometheus metrics, audit events and the admin HTTP
// endpoints.
//
// The model: a Listener accepts a connection, checks the connection limit,
// arms a handshake deadline and hands a Session to its Engine. The engine
// speaks the protocol, obtains the client's token and calls
// Session.Authenticate; only then is the deadline lifted and the session
// listed under its tenant. From then on the engine scopes every request to
// Session.Identity().Tenant and reports each one as forwarded, rewritten or
// refused. Sessions end when the client leaves, when the token expires, when
// the tenant is suspended, or when the process drains on shutdown.
//
// Threat model: clients are untrusted until Authenticate succeeds. A client
// that never authenticates holds a connection for at most the handshake
// timeout; a flood of connections is capped per listener. A session never
// outlives its token or its tenant's suspension. Nothing protocol-specific
// lives here: engines import this package, never each other.
package proxy
