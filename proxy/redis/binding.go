package redis

import "bytes"

// connBinding says which upstream connection may run a command: most
// commands have no effect beyond their reply and run on a connection shared
// by many sessions; those that leave state on their connection, read it, or
// block it need the session's own.
type connBinding uint8

const (
	// anyConn: no per-connection effect; a shared connection serves it.
	anyConn connBinding = iota
	// ownConn: the command changes or reports per-connection state, or
	// blocks its connection. The session moves to a dedicated connection
	// for the rest of its tenant session.
	ownConn
	// clientState: CLIENT SETNAME, GETNAME and SETINFO. On a shared
	// connection the proxy keeps the values itself and sets them on the
	// session's dedicated connection when it gets one.
	clientState
)

// ownConnCommands need a dedicated connection by name, whatever the
// upstream's COMMAND flags say: transactions and watches, subscriptions,
// blocking commands, cluster connection modes, and the CLIENT subcommands
// that report on the caller's connection.
var ownConnCommands = map[string]bool{
	"multi": true, "watch": true,
	"subscribe": true, "psubscribe": true, "ssubscribe": true,
	"unsubscribe": true, "punsubscribe": true, "sunsubscribe": true,
	"blpop": true, "brpop": true, "blmove": true, "brpoplpush": true, "blmpop": true,
	"bzpopmin": true, "bzpopmax": true, "bzmpop": true,
	"wait": true, "waitaof": true,
	"readonly": true, "readwrite": true, "asking": true,
	"client|id": true, "client|info": true,
}

// sharedConnCommands are the @connection and @transaction commands that
// leave no state on a shared connection: PING and ECHO only answer; EXEC,
// DISCARD and UNWATCH find no transaction or watch there (MULTI and WATCH
// move a session to its own connection) and answer as Redis does without
// one.
var sharedConnCommands = map[string]bool{
	"ping": true, "echo": true, "client|help": true,
	"exec": true, "discard": true, "unwatch": true,
}

// bindingOf decides where info, invoked with args, may run. Unknown
// per-connection state must never reach a shared connection, so any
// @connection or @transaction command not known to be harmless, and any
// command the upstream flags as blocking (module commands included), gets
// a dedicated connection.
func bindingOf(info *commandInfo, args [][]byte) connBinding {
	switch info.name {
	case "client|setname", "client|getname", "client|setinfo":
		return clientState
	case "xread", "xreadgroup":
		if blockOption(args) {
			return ownConn
		}
		return anyConn
	}
	switch {
	case ownConnCommands[info.name], info.blocking:
		return ownConn
	case info.categories&(catConnection|catTransaction) != 0 && !sharedConnCommands[info.name]:
		return ownConn
	}
	return anyConn
}

// blockOption reports whether XREAD or XREADGROUP args carry BLOCK among
// the options before STREAMS (after it come stream names, which may be
// anything). A group or consumer named "block" counts too: a needless
// dedicated connection is safe, a blocked shared one is not.
func blockOption(args [][]byte) bool {
	for _, a := range args[1:] {
		switch {
		case bytes.EqualFold(a, []byte("streams")):
			return false
		case bytes.EqualFold(a, []byte("block")):
			return true
		}
	}
	return false
}
