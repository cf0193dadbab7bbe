//go:build !linux && !darwin

package pg

// idleHealthy reports whether an idle connection can be handed out. Without
// a non-blocking peek on this platform only input already buffered is seen;
// a connection the server closed fails the owner's session when used.
func (c *ServerConn) idleHealthy() bool { return !c.rd.buffered() }
