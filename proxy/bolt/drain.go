package bolt

// setTransaction records whether a transaction or an auto-commit result is
// open, as the reader sees the client's messages.
func (c *clientSession) setTransaction(inTx, streamOpen bool) {
	c.mu.Lock()
	c.inTx, c.streamOpen = inTx, streamOpen
	c.mu.Unlock()
}

// idle reports whether the session can end without cutting a request,
// a transaction or a result short.
func (c *clientSession) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.outstanding == 0 && !c.inTx && !c.streamOpen
}

// closeWhenIdle ends the session at its first idle point once the proxy
// drains. Drivers treat the closed connection like a server restart.
func (c *clientSession) closeWhenIdle() {
	select {
	case <-c.s.Draining():
	case <-c.writerDone:
		return
	}
	for !c.idle() {
		select {
		case <-c.replied:
		case <-c.writerDone:
			return
		}
	}
	_ = c.client.Close()
}
