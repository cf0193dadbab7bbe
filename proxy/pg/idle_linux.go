package pg

import (
	"net"
	"syscall"
	"unsafe"
)

// idlePeek looks at an idle connection's socket without reading from it.
// Made once per connection: the check runs on every transaction in
// transaction pooling and allocates nothing.
type idlePeek struct {
	rc      syscall.RawConn
	buf     [1]byte
	healthy bool
	check   func(fd uintptr) bool
}

func newIdlePeek(nc net.Conn) *idlePeek {
	if t, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = t.NetConn() // TLS: any record, close_notify included, is unexpected
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &idlePeek{rc: rc}
	p.check = func(fd uintptr) bool {
		p.healthy = p.quiet(fd)
		return true
	}
	return p
}

// quiet reports whether the socket fd has nothing to read and is not
// closed.
func (p *idlePeek) quiet(fd uintptr) bool {
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p.buf[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno == syscall.EAGAIN
}

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
	if lconn, ok := c.nc.(*loopConn); ok {
		var p idlePeek
		return p.quiet(uintptr(lconn.FD))
	}
	if c.peek == nil {
		return true // checked when used: a read error fails the owner's session
	}
	c.peek.healthy = false
	return c.peek.rc.Read(c.peek.check) == nil && c.peek.healthy
}
