// Package mongo is tenantgate's MongoDB engine: a wire-protocol proxy that
// lets an unchanged application and its unchanged driver use one MongoDB
// deployment as if it were alone in it, while every command it sends is
// confined to the tenant its JWT proves.
//
// # The job
//
// The engine speaks OP_MSG on both sides. It answers the handshake itself
// (hello/isMaster, as a mongos with the sidecar as the only host, no
// compression, no exhaust), authenticates the client with SASL PLAIN (the
// password is the JWT) or MONGODB-OIDC (the JWT in the one-step payload, also
// as speculativeAuthenticate), and then relays each command over the
// session's own upstream connection after a CommandRewriter has scoped it:
//
//   - mode "database": every tenant has its own databases, named by a
//     DatabaseNamer template ({db}__{tenant}); $db and every database named
//     inside a command are renamed, and names are mapped back in replies;
//   - mode "field": tenants share collections; filters are wrapped as
//     {$and: [{<field>: T}, <filter>]}, inserted, upserted and replacement
//     documents are stamped, updates may not touch the field, pipelines are
//     scoped recursively, and the field is removed from returned documents.
//
// Cursor ids are recorded per tenant in a CursorTable; getMore and
// killCursors of any other id are refused as CursorNotFound.
//
// # Threat model
//
// The client is untrusted: it may send any bytes, any command, any BSON.
// Frames are bounded before allocation (max_message_bytes), checksums are
// verified, documents are validated to a bounded depth before anything walks
// them, and every command is checked against an allowlist (commands.go): a
// command, stage or database the engine does not understand is refused in
// MongoDB's own error format, never forwarded. Duplicate keys are refused so
// that the proxy and the server cannot read different values of one field.
// Server-side JavaScript ($where, $function, $accumulator) is refused
// everywhere. The admin, local and config databases are off limits except
// for the commands the proxy answers or filters itself.
//
// The upstream is trusted: its replies are parsed to fix them, not to defend
// against them. Defense in depth belongs to the upstream's own controls (a
// role per tenant database, or a validator requiring the tenant field).
package mongo
