//go:build linux || darwin

package pg

import (
	"errors"
	"net"
	"syscall"
)

// idleHealthy reports whether an idle connection (no reader, nothing
// outstanding) can be handed out: the server has not closed it and sent
// nothing since its last answer. A server that ended the session (restart,
// pg_terminate_backend) leaves a FATAL ErrorResponse and an end of file;
// anything else unasked for is just as unexpected. One non-blocking peek at
// the socket, no read.
func (c *ServerConn) idleHealthy() bool {
	if c.rd.buffered() {
		return false
	}
	nc := c.nc
	if t, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = t.NetConn() // TLS: any record, close_notify included, is unexpected
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true // checked when used: a read error fails the owner's session
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	healthy := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		healthy = errors.Is(err, syscall.EAGAIN) // nothing to read, not closed
		return true
	})
	return err == nil && healthy
}
