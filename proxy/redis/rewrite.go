package redis

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// replyKind says how the upstream's reply to a command is rewritten before
// it reaches the client.
type replyKind uint8

const (
	replyRaw       replyKind = iota // relayed as bytes, undecoded
	replyNameList                   // KEYS, PUBSUB CHANNELS: every element is a name
	replyScan                       // SCAN: [cursor, [names]]
	replyFirstKey                   // BLPOP, LMPOP and the like: [key, ...] or null
	replyStreams                    // XREAD, XREADGROUP: stream name -> entries
	replyNumsub                     // PUBSUB NUMSUB: name, count, name, count...
	replyOK                         // emulated FLUSHDB/FLUSHALL: a count becomes +OK
	replySubscribe                  // (P|S)(UN)SUBSCRIBE confirmations
	replyExec                       // EXEC: each element as its queued command's kind
	replyExecAbort                  // EXEC after a refusal in MULTI: the proxy sent DISCARD instead
)

// Refusal reasons (metric label values and audit codes).
const (
	reasonUnknownCommand = "unknown_command"
	reasonUnscopable     = "unscopable_command"
	reasonSyntax         = "syntax"
	reasonScript         = "script"
	reasonOtherDatabase  = "other_database"
	reasonServerWide     = "server_wide"
	reasonUnsupported    = "unsupported"
	reasonRateLimited    = "rate_limited"
)

// refusal is why a command is answered with an error instead of being
// forwarded; reason empty means no refusal.
type refusal struct {
	reason, message string
}

// plan is how the proxy treats one client command. rewriteCommand fills it; the
// session reuses one plan for every command, so its slices keep their
// capacity across commands.
type plan struct {
	refusal refusal
	local   []byte    // a reply the proxy gives itself (SELECT of the configured db)
	args    [][]byte  // what is sent upstream, the client's own args when unchanged
	keys    []int     // indexes into args of the names that get the tenant prefix
	reply   replyKind // how the reply is rewritten
	binding connBinding
	changed bool     // args were replaced
	scratch [][]byte // backing store for rewritten args
}

func (p *plan) reset(args [][]byte) {
	p.refusal, p.local, p.args, p.keys, p.reply, p.binding, p.changed = refusal{}, nil, args, p.keys[:0], replyRaw, anyConn, false
}

func (p *plan) refuse(reason, format string, a ...any) {
	p.refusal = refusal{reason: reason, message: fmt.Sprintf(format, a...)}
}

// rewritten reports whether the command or its reply differ from what the
// client and the upstream see.
func (p *plan) rewritten() bool { return len(p.keys) > 0 || p.reply != replyRaw || p.changed }

// newArgs starts a rewritten argument list in the plan's scratch space.
func (p *plan) newArgs() [][]byte {
	p.changed = true
	return p.scratch[:0]
}

// commandRewriter decides, for each client command, what reaches the upstream.
// Which arguments are keys comes from the upstream's key specs; the commands
// that the key specs cannot describe safely are handled by name below.
type commandRewriter struct {
	table *KeySpecTable
	db    int // the only database clients may SELECT
	// sortPatterns is false when the prefix itself contains the characters
	// SORT gives meaning to in BY and GET patterns ('*', "->").
	sortPatterns bool
}

// newCommandRewriter returns a commandRewriter for table. template is the key prefix
// template, db the upstream database.
func newCommandRewriter(table *KeySpecTable, template string, db int) *commandRewriter {
	return &commandRewriter{table: table, db: db, sortPatterns: !strings.ContainsAny(template, "*") && !strings.Contains(template, "->")}
}

// commandHandler treats one command by name, in place of its key specs.
type commandHandler func(r *commandRewriter, sc *tenantScope, args [][]byte, p *plan)

// handlers are the commands treated explicitly, by lower-case name
// ("container|subcommand" for subcommands).
var handlers = map[string]commandHandler{
	"keys":                 rewriteKeys,
	"scan":                 rewriteScan,
	"sort":                 rewriteSort,
	"sort_ro":              rewriteSort,
	"copy":                 rewriteCopy,
	"select":               rewriteSelect,
	"flushdb":              rewriteFlush,
	"flushall":             rewriteFlush,
	"dbsize":               rewriteDBSize,
	"info":                 rewriteInfo,
	"publish":              rewritePublish,
	"subscribe":            rewriteChannels,
	"unsubscribe":          rewriteChannels,
	"ssubscribe":           rewriteChannels,
	"sunsubscribe":         rewriteChannels,
	"psubscribe":           rewritePatterns,
	"punsubscribe":         rewritePatterns,
	"pubsub|channels":      rewritePubsubChannels,
	"pubsub|shardchannels": rewritePubsubChannels,
	"pubsub|numsub":        rewritePubsubNumsub,
	"pubsub|shardnumsub":   rewritePubsubNumsub,
	"client|tracking":      rewriteTracking,
}

// replyKinds are the key-spec-scoped commands whose replies name keys.
var replyKinds = map[string]replyKind{
	"blpop": replyFirstKey, "brpop": replyFirstKey, "bzpopmin": replyFirstKey, "bzpopmax": replyFirstKey,
	"lmpop": replyFirstKey, "blmpop": replyFirstKey, "zmpop": replyFirstKey, "bzmpop": replyFirstKey,
	"xread": replyStreams, "xreadgroup": replyStreams,
}

// refused are the commands refused by name, with the reason and what the
// client is told. Keyless commands in the @admin, @dangerous, @keyspace,
// @pubsub or @scripting categories are refused even when not listed; this
// list adds the rest and gives the well-known ones a clear message.
var refused = map[string]refusal{
	"eval":         {reasonScript, "scripts can build key names the proxy never sees"},
	"evalsha":      {reasonScript, "scripts can build key names the proxy never sees"},
	"eval_ro":      {reasonScript, "scripts can build key names the proxy never sees"},
	"evalsha_ro":   {reasonScript, "scripts can build key names the proxy never sees"},
	"fcall":        {reasonScript, "functions can build key names the proxy never sees"},
	"fcall_ro":     {reasonScript, "functions can build key names the proxy never sees"},
	"function":     {reasonScript, "functions can build key names the proxy never sees"},
	"script":       {reasonScript, "scripts can build key names the proxy never sees"},
	"migrate":      {reasonOtherDatabase, "MIGRATE moves keys out of the tenant's database"},
	"move":         {reasonOtherDatabase, "MOVE moves keys out of the tenant's database"},
	"swapdb":       {reasonOtherDatabase, "SWAPDB swaps every tenant's keys"},
	"randomkey":    {reasonServerWide, "RANDOMKEY picks among every tenant's keys"},
	"monitor":      {reasonServerWide, "MONITOR shows every tenant's commands"},
	"debug":        {reasonServerWide, "DEBUG acts on the whole server"},
	"config":       {reasonServerWide, "CONFIG acts on the whole server"},
	"slowlog":      {reasonServerWide, "SLOWLOG shows every tenant's commands"},
	"latency":      {reasonServerWide, "LATENCY reports on the whole server"},
	"acl":          {reasonServerWide, "ACL manages the server's users"},
	"cluster":      {reasonServerWide, "CLUSTER acts on the whole cluster"},
	"failover":     {reasonServerWide, "FAILOVER acts on the whole server"},
	"replicaof":    {reasonServerWide, "REPLICAOF acts on the whole server"},
	"slaveof":      {reasonServerWide, "SLAVEOF acts on the whole server"},
	"save":         {reasonServerWide, "SAVE acts on the whole server"},
	"bgsave":       {reasonServerWide, "BGSAVE acts on the whole server"},
	"bgrewriteaof": {reasonServerWide, "BGREWRITEAOF acts on the whole server"},
	"shutdown":     {reasonServerWide, "SHUTDOWN acts on the whole server"},
	"module":       {reasonServerWide, "MODULE acts on the whole server"},
	"sync":         {reasonServerWide, "replication is not available through the proxy"},
	"psync":        {reasonServerWide, "replication is not available through the proxy"},
	"lastsave":     {reasonServerWide, "LASTSAVE reports on the whole server"},

	"memory|doctor":       {reasonServerWide, "MEMORY DOCTOR reports on the whole server"},
	"memory|stats":        {reasonServerWide, "MEMORY STATS reports on the whole server"},
	"memory|malloc-stats": {reasonServerWide, "MEMORY MALLOC-STATS reports on the whole server"},
	"memory|purge":        {reasonServerWide, "MEMORY PURGE acts on the whole server"},
	"pubsub|numpat":       {reasonServerWide, "PUBSUB NUMPAT counts every tenant's patterns"},
	"client|trackinginfo": {reasonUnsupported, "CLIENT TRACKINGINFO is not supported through the proxy (its prefixes would show the tenant's key prefix)"},
	"client|reply":        {reasonUnsupported, "CLIENT REPLY is not supported through the proxy"},
}

// clientSubcommands are the CLIENT subcommands that pass: they concern only
// the caller's own connection. Every other CLIENT subcommand is refused.
var clientSubcommands = map[string]bool{
	"client|id": true, "client|info": true, "client|getname": true, "client|setname": true,
	"client|setinfo": true, "client|help": true,
	"client|tracking": true, "client|caching": true, "client|getredir": true,
}

// rewriteCommand decides how args, a client command, is treated for the tenant sc.
func (r *commandRewriter) rewriteCommand(sc *tenantScope, args [][]byte, p *plan) {
	p.reset(args)
	info, ok := r.table.lookup(args)
	if !ok {
		if info == nil {
			p.refuse(reasonUnknownCommand, "unknown command '%s'", truncate(args[0]))
		} else {
			p.refuse(reasonUnknownCommand, "unknown subcommand '%s' of '%s'", truncate(args[1]), truncate(args[0]))
		}
		return
	}
	if !info.arityOK(len(args)) {
		p.refuse(reasonSyntax, "wrong number of arguments for '%s' command", info.name)
		return
	}
	if why, ok := refused[info.name]; ok {
		p.refusal = why
		return
	}
	if container, _, isSub := strings.Cut(info.name, "|"); isSub {
		if why, ok := refused[container]; ok {
			p.refusal = why
			return
		}
		if container == "client" && !clientSubcommands[info.name] {
			p.refuse(reasonServerWide, "CLIENT %s reaches other clients' connections", bytes.ToUpper(args[1]))
			return
		}
	}
	p.binding = bindingOf(info, args)
	if h, ok := handlers[info.name]; ok {
		h(r, sc, args, p)
		if p.changed {
			p.scratch = p.args[:0] // keep the grown backing store for the next command
		}
		p.keys = sortedUnique(p.keys)
		return
	}
	if info.unusable != "" {
		p.refuse(reasonUnscopable, "'%s' cannot be scoped to a tenant: %s", info.name, info.unusable)
		return
	}
	if len(info.keySpecs) == 0 {
		if info.categories&serverWide != 0 {
			p.refuse(reasonServerWide, "'%s' acts beyond the tenant's keys", info.name)
		}
		return
	}
	keys, err := info.appendKeyPositions(p.keys, args)
	if err != nil {
		p.refuse(reasonSyntax, "'%s': %v", info.name, err)
		return
	}
	p.keys = sortedUnique(keys)
	p.reply = replyKinds[info.name]
}

// sortedUnique sorts key positions for appendCommand's single pass; a key
// named by two key specs is prefixed once.
func sortedUnique(keys []int) []int {
	slices.Sort(keys)
	return slices.Compact(keys)
}

// appendCommand encodes the plan's command for the upstream, prefixing the
// key arguments with prefix.
func (p *plan) appendCommand(dst []byte, prefix []byte) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(p.args)), 10)
	dst = append(dst, '\r', '\n')
	keys := p.keys
	for i, a := range p.args {
		scoped := len(keys) > 0 && keys[0] == i
		n := len(a)
		if scoped {
			n += len(prefix)
			keys = keys[1:]
		}
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(n), 10)
		dst = append(dst, '\r', '\n')
		if scoped {
			dst = append(dst, prefix...)
		}
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// rewriteTracking scopes CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p
// ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP] (client-side caching). Tracking
// runs on the session's dedicated connection, where RESP3 invalidation
// pushes arrive and lose the prefix (replyPump). Broadcast prefixes get the
// tenant's prefix; BCAST without one tracks the tenant's whole keyspace,
// not the server's. REDIRECT names a connection by an id the client cannot
// know (its own are the proxy's upstream connections), and RESP2
// invalidations arrive only through it: refused.
func rewriteTracking(_ *commandRewriter, _ *tenantScope, args [][]byte, p *plan) {
	out := append(p.newArgs(), args[0], args[1], args[2])
	bcast, prefixes := false, 0
	for i := 3; i < len(args); i++ {
		switch opt := args[i]; {
		case bytes.EqualFold(opt, []byte("prefix")) && i+1 < len(args):
			p.keys = append(p.keys, len(out)+1)
			out = append(out, opt, args[i+1])
			prefixes++
			i++
		case bytes.EqualFold(opt, []byte("redirect")):
			p.refuse(reasonUnsupported, "CLIENT TRACKING REDIRECT is not supported through the proxy: use RESP3 (HELLO 3), where invalidations arrive on the tracking connection itself")
			return
		case bytes.EqualFold(opt, []byte("bcast")):
			bcast = true
			out = append(out, opt)
		case bytes.EqualFold(opt, []byte("optin")), bytes.EqualFold(opt, []byte("optout")), bytes.EqualFold(opt, []byte("noloop")):
			out = append(out, opt)
		default:
			p.refuse(reasonSyntax, "syntax error")
			return
		}
	}
	if bcast && prefixes == 0 && bytes.EqualFold(args[2], []byte("on")) {
		p.keys = append(p.keys, len(out)+1)
		out = append(out, []byte("PREFIX"), nil)
	}
	p.args = out
}

func rewriteKeys(_ *commandRewriter, sc *tenantScope, args [][]byte, p *plan) {
	p.args = append(p.newArgs(), args[0], sc.pattern(args[1]))
	p.reply = replyNameList
}

// rewriteScan scopes SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: the
// pattern (or "*" when there is none) is put under the tenant's prefix.
func rewriteScan(_ *commandRewriter, sc *tenantScope, args [][]byte, p *plan) {
	out := append(p.newArgs(), args[0], args[1])
	match := []byte("*")
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			p.refuse(reasonSyntax, "syntax error")
			return
		}
		switch {
		case bytes.EqualFold(args[i], []byte("match")):
			match = args[i+1]
		case bytes.EqualFold(args[i], []byte("count")), bytes.EqualFold(args[i], []byte("type")):
			out = append(out, args[i], args[i+1])
		default:
			p.refuse(reasonSyntax, "SCAN option '%s' is not supported", truncate(args[i]))
			return
		}
	}
	p.args = append(out, []byte("MATCH"), sc.pattern(match))
	p.reply = replyScan
}

// rewriteSort scopes SORT/SORT_RO key [BY pattern] [LIMIT offset count]
// [GET pattern ...] [ASC|DESC] [ALPHA] [STORE destination]: BY and GET
// patterns name other keys, so they get the prefix too ("#" and BY patterns
// without '*' name no key).
func rewriteSort(r *commandRewriter, sc *tenantScope, args [][]byte, p *plan) {
	out := append(p.newArgs(), args[0], args[1])
	p.keys = append(p.keys, 1)
	for i := 2; i < len(args); i++ {
		opt := args[i]
		switch {
		case bytes.EqualFold(opt, []byte("asc")), bytes.EqualFold(opt, []byte("desc")), bytes.EqualFold(opt, []byte("alpha")):
			out = append(out, opt)
		case bytes.EqualFold(opt, []byte("limit")) && i+2 < len(args):
			out = append(out, opt, args[i+1], args[i+2])
			i += 2
		case bytes.EqualFold(opt, []byte("store")) && i+1 < len(args) && bytes.EqualFold(args[0], []byte("sort")):
			p.keys = append(p.keys, len(out)+1)
			out = append(out, opt, args[i+1])
			i++
		case (bytes.EqualFold(opt, []byte("by")) || bytes.EqualFold(opt, []byte("get"))) && i+1 < len(args):
			pattern := args[i+1]
			i++
			if bytes.Equal(pattern, []byte("#")) && bytes.EqualFold(opt, []byte("get")) || !bytes.Contains(pattern, []byte("*")) && bytes.EqualFold(opt, []byte("by")) {
				out = append(out, opt, pattern)
				continue
			}
			if !r.sortPatterns {
				p.refuse(reasonUnscopable, "SORT %s patterns cannot be scoped with this key prefix", bytes.ToUpper(opt))
				return
			}
			out = append(out, opt, sc.key(pattern))
		default:
			p.refuse(reasonSyntax, "syntax error")
			return
		}
	}
	p.args = out
}

func rewriteCopy(_ *commandRewriter, _ *tenantScope, args [][]byte, p *plan) {
	for _, a := range args[3:] {
		if bytes.EqualFold(a, []byte("db")) {
			p.refuse(reasonOtherDatabase, "COPY ... DB copies keys out of the tenant's database")
			return
		}
		if !bytes.EqualFold(a, []byte("replace")) {
			p.refuse(reasonSyntax, "syntax error")
			return
		}
	}
	p.keys = append(p.keys, 1, 2)
}

func rewriteSelect(r *commandRewriter, _ *tenantScope, args [][]byte, p *plan) {
	if n, err := strconv.Atoi(string(args[1])); err != nil || n != r.db {
		p.refuse(reasonOtherDatabase, "only database %d is available", r.db)
		return
	}
	p.local = []byte("+OK\r\n")
}

// The proxy emulates FLUSHDB, FLUSHALL and DBSIZE within the tenant with
// its own scripts (clients may not run scripts): one round trip, and atomic
// like the commands they stand for.
const (
	flushScript = `local n, c = 0, "0"
repeat
  local r = redis.call("SCAN", c, "MATCH", ARGV[1], "COUNT", 1000)
  c = r[1]
  for _, k in ipairs(r[2]) do redis.call("UNLINK", k); n = n + 1 end
until c == "0"
return n`
	countScript = `local n, c = 0, "0"
repeat
  local r = redis.call("SCAN", c, "MATCH", ARGV[1], "COUNT", 1000)
  c = r[1]
  n = n + #r[2]
until c == "0"
return n`
)

func rewriteFlush(_ *commandRewriter, sc *tenantScope, args [][]byte, p *plan) {
	if len(args) > 2 || len(args) == 2 && !bytes.EqualFold(args[1], []byte("async")) && !bytes.EqualFold(args[1], []byte("sync")) {
		p.refuse(reasonSyntax, "syntax error")
		return
	}
	p.args = append(p.newArgs(), []byte("EVAL"), []byte(flushScript), []byte("0"), sc.pattern([]byte("*")))
	p.reply = replyOK
}

func rewriteDBSize(_ *commandRewriter, sc *tenantScope, _ [][]byte, p *plan) {
	// The script's integer reply is DBSIZE's own reply type.
	p.args = append(p.newArgs(), []byte("EVAL"), []byte(countScript), []byte("0"), sc.pattern([]byte("*")))
}

func rewriteInfo(_ *commandRewriter, _ *tenantScope, args [][]byte, p *plan) {
	if len(args) != 2 || !bytes.EqualFold(args[1], []byte("server")) {
		p.refuse(reasonServerWide, "only INFO server is available; the other sections report on every tenant")
	}
}

func rewritePublish(_ *commandRewriter, _ *tenantScope, _ [][]byte, p *plan) {
	p.keys = append(p.keys, 1)
}

func rewriteChannels(_ *commandRewriter, _ *tenantScope, args [][]byte, p *plan) {
	for i := 1; i < len(args); i++ {
		p.keys = append(p.keys, i)
	}
	p.reply = replySubscribe
}

func rewritePatterns(_ *commandRewriter, sc *tenantScope, args [][]byte, p *plan) {
	out := append(p.newArgs(), args[0])
	for _, pattern := range args[1:] {
		out = append(out, sc.pattern(pattern))
	}
	p.args = out
	p.reply = replySubscribe
}

func rewritePubsubChannels(_ *commandRewriter, sc *tenantScope, args [][]byte, p *plan) {
	pattern := []byte("*")
	if len(args) > 2 {
		pattern = args[2]
	}
	p.args = append(p.newArgs(), args[0], args[1], sc.pattern(pattern))
	p.reply = replyNameList
}

func rewritePubsubNumsub(_ *commandRewriter, _ *tenantScope, args [][]byte, p *plan) {
	for i := 2; i < len(args); i++ {
		p.keys = append(p.keys, i)
	}
	p.reply = replyNumsub
}
