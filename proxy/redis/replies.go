package redis

var execAbort = []byte("-EXECABORT Transaction discarded because of previous errors.\r\n")

// rewriteReply appends the client's version of raw, an upstream reply to a
// command planned with kind: names lose the tenant prefix. exec holds the
// kinds of the commands queued in a transaction, for replyExec. Errors,
// nulls and replies of kind replyRaw are relayed as they are.
func rewriteReply(dst []byte, kind replyKind, exec []replyKind, raw []byte, sc *tenantScope) ([]byte, error) {
	if kind == replyExecAbort {
		return append(dst, execAbort...), nil
	}
	if kind == replyRaw || raw[0] == '-' || raw[0] == '_' {
		return append(dst, raw...), nil
	}
	v, _, err := parseValue(raw)
	if err != nil {
		return dst, err
	}
	if kind == replyExec {
		if v.null || !v.isAggregate() {
			return append(dst, raw...), nil // aborted by WATCH: nothing ran
		}
		if len(v.elems) != len(exec) {
			return append(dst, "-ERR the proxy could not match the transaction's replies to its commands\r\n"...), nil
		}
		for i := range v.elems {
			rewriteValue(&v.elems[i], exec[i], sc)
		}
		return appendValue(dst, v), nil
	}
	rewriteValue(&v, kind, sc)
	return appendValue(dst, v), nil
}

// rewriteValue strips the prefix from the names in v, a reply of kind, and
// turns the emulated FLUSHDB's count into +OK.
func rewriteValue(v *value, kind replyKind, sc *tenantScope) {
	if v.kind == '-' || v.null {
		return
	}
	switch kind {
	case replyNameList:
		v.elems = stripNames(v.elems, sc)
	case replyScan:
		if v.isAggregate() && len(v.elems) == 2 {
			v.elems[1].elems = stripNames(v.elems[1].elems, sc)
		}
	case replyFirstKey:
		if v.isAggregate() && len(v.elems) > 0 {
			v.elems[0].text, _ = sc.strip(v.elems[0].text)
		}
	case replyStreams:
		stripStreams(v, sc)
	case replyNumsub:
		for i := 0; i < len(v.elems); i += 2 {
			v.elems[i].text, _ = sc.strip(v.elems[i].text)
		}
	case replyOK:
		if v.kind == ':' {
			*v = value{kind: '+', text: []byte("OK")}
		}
	case replySubscribe:
		stripPubSub(v, sc)
	}
}

// stripNames removes the prefix from every name and drops names that are
// not the tenant's (the scoped pattern already excludes them; this is the
// second line of defence).
func stripNames(names []value, sc *tenantScope) []value {
	kept := names[:0]
	for _, n := range names {
		if s, ok := sc.strip(n.text); ok {
			n.text = s
			kept = append(kept, n)
		}
	}
	return kept
}

// stripStreams handles XREAD's reply: a map stream -> entries (RESP3) or
// an array of [stream, entries] pairs (RESP2).
func stripStreams(v *value, sc *tenantScope) {
	if v.kind == '%' {
		for i := 0; i < len(v.elems); i += 2 {
			v.elems[i].text, _ = sc.strip(v.elems[i].text)
		}
		return
	}
	for i := range v.elems {
		if e := &v.elems[i]; e.isAggregate() && len(e.elems) > 0 {
			e.elems[0].text, _ = sc.strip(e.elems[0].text)
		}
	}
}

// pubsubKind is what a pub/sub frame is, from its first element.
type pubsubKind uint8

const (
	notPubSub pubsubKind = iota
	pubsubMessage
	pubsubPMessage
	pubsubConfirmation        // subscribe, unsubscribe and the shard variants
	pubsubPatternConfirmation // psubscribe, punsubscribe
)

// pubsubFrame classifies a pub/sub frame; shard is set for the shard
// channel variants, whose subscriptions Redis counts separately.
type pubsubFrame struct {
	kind  pubsubKind
	shard bool
}

var pubsubFrames = map[string]pubsubFrame{
	"message": {pubsubMessage, false}, "smessage": {pubsubMessage, true}, "pmessage": {pubsubPMessage, false},
	"subscribe": {pubsubConfirmation, false}, "unsubscribe": {pubsubConfirmation, false},
	"ssubscribe": {pubsubConfirmation, true}, "sunsubscribe": {pubsubConfirmation, true},
	"psubscribe": {pubsubPatternConfirmation, false}, "punsubscribe": {pubsubPatternConfirmation, false},
}

// classifyPubSub tells what pub/sub frame v is, if any, from its shape.
func classifyPubSub(v value) pubsubFrame {
	if !v.isAggregate() || len(v.elems) < 3 || !v.elems[0].isString() {
		return pubsubFrame{}
	}
	var buf [16]byte
	if len(v.elems[0].text) > len(buf) {
		return pubsubFrame{}
	}
	f := pubsubFrames[string(lowerInto(buf[:0], v.elems[0].text))]
	want := 3
	if f.kind == pubsubPMessage {
		want = 4
	}
	if len(v.elems) != want {
		return pubsubFrame{}
	}
	return f
}

// stripPubSub removes the tenant's prefix from the channel and pattern
// names of a pub/sub frame. ours is false for a message on a channel that
// is not the tenant's: the connection only ever subscribes to scoped names,
// so that cannot happen, but such a frame is dropped rather than relayed.
func stripPubSub(v *value, sc *tenantScope) (f pubsubFrame, ours bool) {
	f, ours = classifyPubSub(*v), true
	switch f.kind {
	case pubsubMessage:
		v.elems[1].text, ours = sc.strip(v.elems[1].text)
	case pubsubConfirmation:
		v.elems[1].text, _ = sc.strip(v.elems[1].text)
	case pubsubPMessage:
		v.elems[1].text, _ = sc.stripPattern(v.elems[1].text)
		v.elems[2].text, ours = sc.strip(v.elems[2].text)
	case pubsubPatternConfirmation:
		v.elems[1].text, _ = sc.stripPattern(v.elems[1].text)
	}
	return f, ours
}
