package redis

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// categories are the ACL categories the proxy looks at. Keyless commands
// in the serverWide ones act on the whole server, the whole keyspace,
// channels or scripts, and are refused unless handled explicitly; the
// @connection and @transaction ones can hold per-connection state, which
// decides the upstream connection they run on (bindingOf).
type categories uint8

const (
	catAdmin categories = 1 << iota
	catDangerous
	catKeyspace
	catPubSub
	catScripting
	catConnection
	catTransaction
)

var categoryByName = map[string]categories{
	"@admin": catAdmin, "@dangerous": catDangerous, "@keyspace": catKeyspace,
	"@pubsub": catPubSub, "@scripting": catScripting,
	"@connection": catConnection, "@transaction": catTransaction,
}

// serverWide are the categories that make a keyless command reach beyond a
// tenant.
const serverWide = catAdmin | catDangerous | catKeyspace | catPubSub | catScripting

// beginSearch and findKeys are Redis key specifications
// (https://redis.io/docs/reference/key-specs/).
type beginSearch struct {
	keyword   string // empty: by index
	index     int    // by index: the first key's argument index
	startFrom int    // by keyword: where the search starts; negative counts from the end
}

type findKeys struct {
	keynum    bool // true: keynum; false: range
	lastKey   int  // range: last key relative to the first, negative from the end
	keyStep   int
	limit     int // range with lastKey -1: keys take 1/limit of what remains
	keyNumIdx int // keynum: where the count is, relative to the begin-search result
	firstKey  int // keynum: first key, relative to the begin-search result
}

type keySpec struct {
	begin beginSearch
	find  findKeys
}

// commandInfo is what the proxy knows of one command (or subcommand).
type commandInfo struct {
	name        string // lower case, "object|encoding" for subcommands
	arity       int    // positive: exact argument count; negative: minimum
	categories  categories
	blocking    bool // the "blocking" command flag: it may block its connection
	keySpecs    []keySpec
	unusable    string // why the key specs cannot be trusted; empty when they can
	subcommands map[string]*commandInfo
}

// KeySpecTable holds the upstream's commands and their key specifications,
// loaded from its COMMAND reply. It is read-only after loading and shared by
// every session.
type KeySpecTable struct {
	commands map[string]*commandInfo
}

// LoadKeySpecTable builds the table from the raw reply to COMMAND (or
// COMMAND INFO), in RESP2 or RESP3.
func LoadKeySpecTable(reply []byte) (*KeySpecTable, error) {
	v, rest, err := parseValue(reply)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing bytes after the COMMAND reply")
	}
	if v.kind == '-' {
		return nil, fmt.Errorf("COMMAND: %s", v.text)
	}
	if !v.isAggregate() {
		return nil, errors.New("COMMAND reply is not an array")
	}
	t := &KeySpecTable{commands: make(map[string]*commandInfo, len(v.elems))}
	for _, entry := range v.elems {
		if entry.null {
			continue // COMMAND INFO of an unknown name
		}
		info, err := parseCommandInfo(entry)
		if err != nil {
			return nil, err
		}
		t.commands[info.name] = info
	}
	if len(t.commands) == 0 {
		return nil, errors.New("COMMAND reply lists no commands")
	}
	return t, nil
}

func parseCommandInfo(v value) (*commandInfo, error) {
	if !v.isAggregate() || len(v.elems) < 7 || !v.elems[0].isString() {
		return nil, errors.New("malformed COMMAND entry")
	}
	info := &commandInfo{name: strings.ToLower(string(v.elems[0].text))}
	arity, err := strconv.Atoi(string(v.elems[1].text))
	if err != nil {
		return nil, fmt.Errorf("command %s: bad arity %q", info.name, v.elems[1].text)
	}
	info.arity = arity
	for _, f := range v.elems[2].elems {
		if strings.EqualFold(string(f.text), "blocking") {
			info.blocking = true
		}
	}
	for _, c := range v.elems[6].elems {
		info.categories |= categoryByName[strings.ToLower(string(c.text))]
	}
	if len(v.elems) > 8 {
		for _, spec := range v.elems[8].elems {
			ks, why := parseKeySpec(spec)
			if why != "" && info.unusable == "" {
				info.unusable = why
			}
			info.keySpecs = append(info.keySpecs, ks)
		}
	} else if first, _ := strconv.Atoi(string(v.elems[3].text)); first != 0 {
		// A server older than Redis 7 has no key specs; its legacy
		// first/last/step triple cannot describe every command.
		info.unusable = "the upstream publishes no key specs for this command"
	}
	if len(v.elems) > 9 && len(v.elems[9].elems) > 0 {
		info.subcommands = make(map[string]*commandInfo, len(v.elems[9].elems))
		for _, sub := range v.elems[9].elems {
			si, err := parseCommandInfo(sub)
			if err != nil {
				return nil, err
			}
			info.subcommands[si.name] = si
		}
	}
	return info, nil
}

// fields returns a map reply, or a RESP2 array of alternating names and
// values, as name -> value.
func fields(v value) map[string]value {
	m := make(map[string]value, len(v.elems)/2)
	for i := 0; i+1 < len(v.elems); i += 2 {
		m[strings.ToLower(string(v.elems[i].text))] = v.elems[i+1]
	}
	return m
}

// parseKeySpec decodes one key spec; why is non-empty when the spec cannot
// be used to find every key (incomplete, or of a type the proxy does not
// know).
func parseKeySpec(v value) (ks keySpec, why string) {
	f := fields(v)
	bs, fk := fields(f["begin_search"]), fields(f["find_keys"])
	bspec, fspec := fields(bs["spec"]), fields(fk["spec"])
	num := func(m map[string]value, name string) int {
		n, _ := strconv.Atoi(string(m[name].text))
		return n
	}
	switch strings.ToLower(string(bs["type"].text)) {
	case "index":
		ks.begin.index = num(bspec, "index")
		if ks.begin.index < 1 {
			return ks, "a key spec has an invalid index"
		}
	case "keyword":
		ks.begin.keyword = string(bspec["keyword"].text)
		ks.begin.startFrom = num(bspec, "startfrom")
		if ks.begin.keyword == "" || ks.begin.startFrom == 0 {
			return ks, "a key spec has an invalid keyword search"
		}
	default:
		return ks, "its keys cannot be located from its arguments"
	}
	switch strings.ToLower(string(fk["type"].text)) {
	case "range":
		ks.find.lastKey, ks.find.keyStep, ks.find.limit = num(fspec, "lastkey"), num(fspec, "keystep"), num(fspec, "limit")
		if ks.find.lastKey < 0 && ks.find.limit > 1 && ks.find.lastKey != -1 {
			return ks, "a key spec has an invalid range"
		}
	case "keynum":
		ks.find.keynum = true
		ks.find.keyNumIdx, ks.find.firstKey, ks.find.keyStep = num(fspec, "keynumidx"), num(fspec, "firstkey"), num(fspec, "keystep")
	default:
		return ks, "its keys cannot be located from its arguments"
	}
	if ks.find.keyStep < 1 {
		return ks, "a key spec has an invalid key step"
	}
	for _, flag := range f["flags"].elems {
		if strings.EqualFold(string(flag.text), "incomplete") {
			return ks, "its key specs are incomplete"
		}
	}
	return ks, ""
}

// lookup finds the command (or, for container commands such as OBJECT, the
// subcommand) that args invoke. ok is false for an unknown command (info
// nil) and for an unknown subcommand (info is the container).
func (t *KeySpecTable) lookup(args [][]byte) (info *commandInfo, ok bool) {
	var buf [32]byte
	info = t.commands[string(lowerInto(buf[:0], args[0]))]
	if info == nil || info.subcommands == nil || len(args) < 2 {
		return info, info != nil
	}
	name := append(lowerInto(buf[:0], args[0]), '|')
	name = lowerInto(name, args[1])
	if sub := info.subcommands[string(name)]; sub != nil {
		return sub, true
	}
	return info, false
}

// lowerInto appends the ASCII lower case of b to dst.
func lowerInto(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// arityOK reports whether args has the argument count the command requires.
func (c *commandInfo) arityOK(n int) bool {
	if c.arity >= 0 {
		return n == c.arity
	}
	return n >= -c.arity
}

var errKeySpecMismatch = errors.New("the arguments do not match the command's key specs")

// appendKeyPositions appends the argument indexes holding keys, following
// Redis's own getKeysUsingKeySpecs. An index outside args is an error (the
// command is malformed and is refused rather than forwarded half-scoped).
func (c *commandInfo) appendKeyPositions(dst []int, args [][]byte) ([]int, error) {
	argc := len(args)
	for _, ks := range c.keySpecs {
		first, found := ks.begin.index, true
		if ks.begin.keyword != "" {
			first, found = searchKeyword(args, ks.begin.keyword, ks.begin.startFrom)
			if !found {
				continue
			}
		}
		var last, step int
		if !ks.find.keynum {
			step = ks.find.keyStep
			switch {
			case ks.find.lastKey >= 0:
				last = first + ks.find.lastKey
			case ks.find.limit <= 1:
				last = argc + ks.find.lastKey
			default:
				last = first + (argc-first)/ks.find.limit + ks.find.lastKey
			}
		} else {
			at := first + ks.find.keyNumIdx
			if at >= argc {
				return dst, errKeySpecMismatch
			}
			n, err := strconv.Atoi(string(args[at]))
			if err != nil || n < 0 || n > argc {
				return dst, errKeySpecMismatch
			}
			first += ks.find.firstKey
			step = ks.find.keyStep
			last = first + (n-1)*step
		}
		for i := first; i <= last; i += step {
			if i < 1 || i >= argc {
				return dst, errKeySpecMismatch
			}
			dst = append(dst, i)
		}
		// The key spec names the key after the first occurrence of the
		// keyword, but a command's own parser may take a later one
		// (GEORADIUS ... STORE a STORE b stores into b): a repeat of the
		// keyword after the keys is refused.
		if ks.begin.keyword != "" && ks.begin.startFrom > 0 {
			for i := max(last+1, first); i < argc; i++ {
				if strings.EqualFold(string(args[i]), ks.begin.keyword) {
					return dst, errKeySpecMismatch
				}
			}
		}
	}
	return dst, nil
}

// searchKeyword finds keyword (case-insensitive) exactly as Redis does:
// from startFrom forwards, or from argc+startFrom backwards, stopping before
// the last (first) argument. It returns the index after the keyword.
func searchKeyword(args [][]byte, keyword string, startFrom int) (int, bool) {
	argc := len(args)
	start, end := startFrom, argc-1
	if startFrom < 0 {
		// Backwards down to argument 1 included, as Redis searches.
		start, end = argc+startFrom, 0
	}
	for i := start; i != end && i >= 1 && i < argc; {
		if strings.EqualFold(string(args[i]), keyword) {
			return i + 1, true
		}
		if start <= end {
			i++
		} else {
			i--
		}
	}
	return 0, false
}
