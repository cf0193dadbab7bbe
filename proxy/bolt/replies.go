package bolt

import (
	"bufio"
	"errors"

	"github.com/tenantgate/tenantgate/proxy/bolt/packstream"
)

// writeReplies is the writer loop.
func (c *clientSession) writeReplies() {
	defer close(c.writerDone)
	if err := c.relayReplies(); err != nil {
		_ = c.client.Close()
		_ = c.up.Close()
	}
	for range c.replies {
		// The session is over; let the reader finish.
	}
}

func (c *clientSession) relayReplies() error {
	w := bufio.NewWriterSize(c.client, 32<<10)
	for r := range c.replies {
		if r.local != nil {
			if _, err := w.Write(appendChunked(nil, r.local)); err != nil {
				return err
			}
		} else if err := c.relayUpstreamReply(w, r); err != nil {
			return err
		}
		if len(c.replies) == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
		c.mu.Lock()
		c.outstanding--
		c.mu.Unlock()
		select {
		case c.replied <- struct{}{}:
		default:
		}
	}
	return w.Flush()
}

// relayUpstreamReply copies the upstream's reply to one request: any
// RECORDs, then the summary.
func (c *clientSession) relayUpstreamReply(w *bufio.Writer, r reply) error {
	for {
		msg, err := c.fromUpstream.read()
		if err != nil {
			return err
		}
		tag, err := tagOf(msg)
		if err != nil {
			return err
		}
		switch tag {
		case msgRecord:
			msg, err = hideLabel(msg, r.label)
		case msgFailure:
			msg, err = scrubLabel(msg, r.label)
		case msgSuccess:
			if r.learn || r.route {
				msg, err = c.inspectSuccess(msg, r.route)
			}
			if err == nil {
				msg, err = scrubLabel(msg, r.label) // EXPLAIN/PROFILE plans name the label
			}
		}
		if err != nil {
			return err
		}
		if r.stream && tag != msgRecord {
			c.mu.Lock()
			c.streamOpen = tag == msgSuccess && hasMore(msg)
			c.mu.Unlock()
		}
		if _, err := w.Write(appendChunked(nil, msg)); err != nil {
			return err
		}
		if tag != msgRecord {
			return nil
		}
	}
}

// inspectSuccess learns the database a reply names and, for ROUTE,
// replaces every address with the proxy's.
func (c *clientSession) inspectSuccess(msg []byte, route bool) ([]byte, error) {
	st, err := packstream.DecodeStructure(msg, packstream.DefaultLimits)
	if err != nil {
		return nil, err
	}
	meta, err := mapField(st, 0, "SUCCESS")
	if err != nil {
		return nil, err
	}
	if db, ok := stringEntry(meta, "db"); ok {
		c.learnDatabase(db)
	}
	if !route {
		return msg, nil
	}
	rt, ok := meta.Get("rt")
	table, isMap := rt.(*packstream.Map)
	if !ok || !isMap {
		return nil, errors.New("bolt: ROUTE reply without a routing table")
	}
	if db, ok := stringEntry(table, "db"); ok {
		c.learnDatabase(db)
	}
	table.Set("servers", rewriteServers(table, c.e.advertise))
	return encode(msgSuccess, meta), nil
}
