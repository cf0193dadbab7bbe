package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tenantgate/tenantgate/proxy"
)

// pending is a reply the client is owed, in the order it is owed.
type pending struct {
	local         []byte      // a reply the proxy made; nil: the upstream's next reply
	reply         replyKind   // how the upstream reply is rewritten
	exec          []replyKind // EXEC: how each queued command's reply is rewritten
	confirmations int         // subscription commands: confirmations still to come
	hello         int         // HELLO: the protocol the upstream switches to
	discard       bool        // the proxy's own command: the reply is not relayed
	rewritten     bool
	start         time.Time
	req           *proxy.RequestMetrics
}

// replyQueue is a FIFO of pending replies.
type replyQueue struct {
	items []pending
	head  int
}

func (q *replyQueue) empty() bool     { return q.head == len(q.items) }
func (q *replyQueue) push(p pending)  { q.items = append(q.items, p) }
func (q *replyQueue) front() *pending { return &q.items[q.head] }
func (q *replyQueue) clear()          { q.items, q.head = q.items[:0], 0 }
func (q *replyQueue) pop() {
	q.items[q.head] = pending{}
	if q.head++; q.head == len(q.items) {
		q.clear()
	}
}

// replyPump relays a dedicated upstream connection's replies to the
// client, in order, rewriting those that carry names and passing out-of-band pub/sub
// messages through as they come.
type replyPump struct {
	c       *clientSession
	up      *upstream
	scope   *tenantScope // fixed: a new tenant gets a new upstream and pump
	proto   int          // the upstream connection's protocol, as HELLO replies set it
	subs    [2]int64     // RESP2: channel+pattern and shard subscription counts
	closing atomic.Bool
	done    chan struct{}
	unwatch func() bool
	scratch []byte
}

func startReplyPump(c *clientSession, up *upstream) *replyPump {
	p := &replyPump{c: c, up: up, scope: c.scope, proto: c.proto, done: make(chan struct{})}
	p.unwatch = context.AfterFunc(c.s.Context(), func() { _ = up.conn.Close() })
	go p.run()
	return p
}

// close ends the upstream connection and waits for the pump to stop.
func (p *replyPump) close() {
	p.closing.Store(true)
	p.unwatch()
	_ = p.up.conn.Close()
	<-p.done
}

func (p *replyPump) run() {
	defer close(p.done)
	c := p.c
	for {
		raw, err := p.up.replies.next()
		if err == nil {
			err = p.deliverLocked(raw)
		}
		if err != nil {
			if !p.closing.Load() && c.s.Context().Err() == nil {
				c.e.log.Warn("redis upstream connection failed; closing the session", "session_id", c.s.ID(), "err", err)
				c.s.Close(fmt.Errorf("redis upstream: %w", err))
			}
			c.mu.Lock()
			c.queue.clear()
			c.idle.Broadcast()
			c.mu.Unlock()
			return
		}
	}
}

// deliverLocked delivers under the session lock. A panic (a bug) ends the
// session instead of the process.
func (p *replyPump) deliverLocked(raw []byte) (err error) {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic relaying a reply: %v\n%s", r, debug.Stack())
		}
	}()
	return p.deliver(raw)
}

// deliver writes the client's version of one upstream reply. Called with
// c.mu held.
func (p *replyPump) deliver(raw []byte) error {
	c := p.c
	if raw[0] == '>' || p.proto == 2 && p.subscribed() && raw[0] == '*' {
		v, _, err := parseValue(raw)
		if err != nil {
			return err
		}
		switch classifyPubSub(v).kind {
		case pubsubMessage, pubsubPMessage:
			return p.writeMessage(v)
		case pubsubConfirmation, pubsubPatternConfirmation:
			if !c.queue.empty() && c.queue.front().reply == replySubscribe {
				return p.confirm(v)
			}
		}
		if raw[0] == '>' {
			if isInvalidation(v) {
				return p.writeInvalidation(v)
			}
			return nil // a push the proxy does not know may carry names: dropped
		}
	}
	for {
		if c.queue.empty() {
			return errors.New("a reply no request asked for")
		}
		head := c.queue.front()
		if head.reply != replySubscribe || raw[0] == '-' {
			break
		}
		v, _, err := parseValue(raw)
		if err != nil {
			return err
		}
		if k := classifyPubSub(v).kind; k == pubsubConfirmation || k == pubsubPatternConfirmation {
			return p.confirm(v)
		}
		// Fewer confirmations came than expected (the upstream refused some):
		// the subscription command is over; the reply is the next command's.
		p.finish()
	}
	head := c.queue.front()
	if head.discard {
		p.finish()
		return nil
	}
	var err error
	switch head.reply {
	case replyRaw:
		_, err = c.out.Write(raw)
	default:
		p.scratch, err = rewriteReply(reuse(p.scratch), head.reply, head.exec, raw, p.scope)
		if err == nil {
			_, err = c.out.Write(p.scratch)
		}
	}
	if err != nil {
		return err
	}
	if head.hello != 0 && raw[0] != '-' {
		p.proto = head.hello
	}
	p.finish()
	return nil
}

// writeMessage relays a published message whose channel is the tenant's.
func (p *replyPump) writeMessage(v value) error {
	if _, ours := stripPubSub(&v, p.scope); !ours {
		return nil
	}
	p.scratch = appendValue(reuse(p.scratch), v)
	_, err := p.c.out.Write(p.scratch)
	p.flushIfDrained()
	return err
}

// writeInvalidation relays a client-side caching invalidation push with the
// prefix taken off its keys. Keys that are not the tenant's cannot be
// tracked by this connection; were one to come, it is dropped, and so is a
// push left without keys. A null key list (the whole cache, after a flush)
// passes as it is.
func (p *replyPump) writeInvalidation(v value) error {
	keys := &v.elems[1]
	if !keys.null {
		n := len(keys.elems)
		keys.elems = stripNames(keys.elems, p.scope)
		if n > 0 && len(keys.elems) == 0 {
			return nil
		}
	}
	p.scratch = appendValue(reuse(p.scratch), v)
	_, err := p.c.out.Write(p.scratch)
	p.flushIfDrained()
	return err
}

// isInvalidation reports whether v is the push client-side caching sends:
// ["invalidate", [key, ...] or null].
func isInvalidation(v value) bool {
	return v.kind == '>' && len(v.elems) == 2 && v.elems[0].isString() && bytes.EqualFold(v.elems[0].text, []byte("invalidate")) &&
		(v.elems[1].null || v.elems[1].isAggregate())
}

// confirm relays one subscription confirmation and counts it against the
// subscription command at the head of the queue.
func (p *replyPump) confirm(v value) error {
	f, _ := stripPubSub(&v, p.scope)
	if count, err := strconv.ParseInt(string(v.elems[2].text), 10, 64); err == nil {
		if f.shard {
			p.subs[1] = count
		} else {
			p.subs[0] = count
		}
	}
	p.scratch = appendValue(reuse(p.scratch), v)
	if _, err := p.c.out.Write(p.scratch); err != nil {
		return err
	}
	head := p.c.queue.front()
	if head.confirmations--; head.confirmations <= 0 {
		p.finish()
	} else {
		p.flushIfDrained()
	}
	return nil
}

// finish completes the request at the head of the queue, then writes the
// proxy's own replies queued behind it.
func (p *replyPump) finish() {
	p.c.completeHead()
	p.flushIfDrained()
}

// flushIfDrained flushes the client writer unless more upstream replies are
// already buffered, so pipelined replies leave in few writes.
func (p *replyPump) flushIfDrained() {
	if !p.up.replies.buffered() {
		_ = p.c.out.Flush()
	}
}

// subscribed reports whether a RESP2 upstream connection is in subscribed
// mode, where messages arrive between replies.
func (p *replyPump) subscribed() bool { return p.subs[0]+p.subs[1] > 0 }
