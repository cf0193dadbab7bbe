//go:build !linux

package pg

import "net"

// idlePeek is not available on this platform.
type idlePeek struct{}

func newIdlePeek(net.Conn) *idlePeek { return nil }

// idleHealthy reports whether an idle connection can be handed out. Without
// a non-blocking peek on this platform only input already buffered is seen;
// a connection the server closed fails the owner's session when used.
func (c *ServerConn) idleHealthy() bool { return !c.rd.buffered() }
