// Package redis is tenantgate's Redis engine: a RESP2/RESP3 proxy that
// puts every key and channel a client touches under its tenant's prefix
// (t:<tenant>: by default) and takes the prefix off the names in replies, so
// an unchanged application sees one private keyspace.
//
// A client authenticates with its JWT as the password (AUTH token, AUTH user
// token, HELLO 2|3 AUTH user token). Each client session then gets its own
// upstream connection, opened with the proxy's credentials; commands go out
// in order and replies come back in order, which keeps pipelining, blocking
// commands, MULTI/EXEC/WATCH and pub/sub working with their Redis semantics.
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
