// Package redis is tenantgate's Redis engine: a RESP2/RESP3 proxy that
// puts every key and channel a client touches under its tenant's prefix
// (t:<tenant>: by default) and takes the prefix off the names in replies, so
// an unchanged application sees one private keyspace.
//
// A client authenticates with its JWT as the password (AUTH token, AUTH user
// token, HELLO 2|3 AUTH user token). Its commands then reach Redis over the
// proxy's own connections, opened with the proxy's credentials, in order,
// and the replies come back in order.
//
// Connection model: sessions share a few upstream connections per protocol
// version (Options.UpstreamConnections), so one write and one read on a
// shared connection carry many clients' commands. On Linux a session that
// holds no per-connection state is served by an eventLoop: its client
// socket leaves the Go runtime (proxy.Session.DetachSocket) for the loop's
// epoll instance, and the loop reads every ready client, runs each command
// through the session's own code, sends them all upstream in one write and
// relays each reply to its client, rewritten, without waking a goroutine
// per command. At the first command that may block (AUTH, HELLO, RESET,
// QUIT, one needing a dedicated connection), a malformed request or the end
// of the stream, the loop hands the socket back to the session's goroutine
// once the commands before are answered. Elsewhere (TLS clients, other
// systems, a session just handed back) the goroutine sends each batch read
// from its client to a muxLink and relays the replies itself. Either way a
// slow client stalls no one else: the loop stops reading a client whose
// replies pile up, and a shared connection's reader never writes to a
// client. A command with per-connection state or effect (bindingOf: MULTI,
// WATCH, subscriptions, blocking commands, CLIENT ID/INFO, @connection
// commands) moves the session to a dedicated upstream connection for the
// rest of its tenant session, after the commands it already sent are
// answered; a replyPump relays that connection's replies, pub/sub messages
// included. CLIENT SETNAME/GETNAME/SETINFO are kept by the proxy while the
// session shares. So pipelining, blocking commands, MULTI/EXEC/WATCH and
// pub/sub keep their Redis semantics, and no per-connection state is ever
// left on a shared connection for another session to meet.
//
// Which arguments are keys is not a hand-written list: the engine loads the
// upstream's COMMAND table (at start, and again when a new upstream
// connection meets another server version or module list) and follows each
// command's key specifications, as Redis itself does (KeySpecTable). Commands whose key
// specs are incomplete or cannot be followed, unknown commands, and keyless
// commands in the admin, dangerous, keyspace, pubsub or scripting categories
// are refused unless handled by name (KEYS, SCAN, SORT, FLUSHDB, pub/sub...).
//
// With a rate limit (Options.RateLimit) each tenant's commands are limited
// by a token bucket shared by its sessions, and optionally by a sliding
// window in Redis shared by several sidecars (policy.RateLimiter).
//
// Threat model: the client is untrusted. It must not read, write, count,
// list, watch, block on or be notified about another tenant's keys or
// channels, learn the prefix, change the server's configuration, or reach
// beyond its tenant through scripts, patterns, other databases or other
// connections. Every refusal is an -ERR reply (the connection survives),
// counted in metrics and audited. Defence in depth: give the proxy's
// upstream user a Redis ACL limited to the prefixed key and channel
// patterns, so even a flaw here cannot reach unprefixed data.
package redis
