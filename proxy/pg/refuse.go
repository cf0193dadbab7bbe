package pg

import (
	"context"
	"errors"
)

// refuse answers a refused statement with r, counts and audits it.
func (c *clientSession) refuse(r *Refusal, statement []byte, simple bool) error {
	c.s.Refuse(r.Rule, r.Error(), statement)
	return c.fail(refusalError(r), simple)
}

// fail answers the current message with pe as PostgreSQL would: after the
// answers to everything still outstanding, and with the server's
// transaction failed too. When the client holds a server connection, the
// proxy sends it the Execute of a portal that never exists, and the error
// the server answers with is replaced by pe: the server aborts the
// transaction and skips to the client's Sync exactly as for its own error.
// simple is true for a simple Query, which ends with ReadyForQuery.
func (c *clientSession) fail(pe *pgError, simple bool) error {
	if srv := c.server.Load(); srv != nil {
		srv.mu.Lock()
		if srv.owner == c {
			c.push(srv, pending{kind: 'E', refusal: pe}, appendMsg(nil, 'E', []byte(portalRefused), []byte{0, 0, 0, 0, 0}))
			if simple {
				c.push(srv, pending{kind: 'S'}, []byte{'S', 0, 0, 0, 4})
			} else {
				c.unsynced = true
			}
			srv.mu.Unlock()
			return nil
		}
		srv.mu.Unlock()
	}
	c.write(pe.encode(nil), false)
	if simple {
		c.write(readyForQuery('I'), true)
	} else {
		c.skipping = true
	}
	return nil
}

// poolError answers a message that found no server connection.
func (c *clientSession) poolError(err error, simple bool) error {
	if c.s.Context().Err() != nil {
		return err
	}
	code := "08006"
	if errors.Is(err, errPoolTimeout) || errors.Is(err, context.DeadlineExceeded) {
		code = "53300"
	}
	return c.fail(errorf(code, "tenantgate: "+err.Error()), simple)
}
