package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// ErrNotDetachable is returned by DetachSocket and DetachFD for a
// connection whose bytes the Go runtime must carry itself: TLS, or a
// connection that is not a plain socket.
var ErrNotDetachable = errors.New("the connection cannot leave the Go runtime's network poller")

// ErrWouldBlock is what a LoopSocket's Read returns when the socket holds
// nothing yet: the event loop waits for it to become readable.
var ErrWouldBlock = errors.New("no data yet")

// DetachFD takes conn's socket out of the Go runtime: it returns a new,
// non-blocking, close-on-exec descriptor of the same socket and closes conn,
// which removes the socket from the runtime's network poller without
// closing it. The caller owns the descriptor: it reads, writes and closes it
// with system calls (an event loop of its own), or gives it back to the
// runtime with net.FileConn. conn must not be used afterwards.
func DetachFD(conn net.Conn) (int, error) {
	if _, ok := conn.(*tls.Conn); ok {
		return -1, ErrNotDetachable
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return -1, ErrNotDetachable
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) { fd, dupErr = dupNonblocking(int(s)) }); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, dupErr
	}
	_ = conn.Close()
	return fd, nil
}

// AttachFD returns a descriptor taken with DetachFD to the Go runtime as a
// net.Conn; the descriptor itself is closed (the connection holds a copy).
func AttachFD(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "socket")
	defer f.Close()
	return net.FileConn(f)
}

// DetachSocket hands the session's client socket to the engine, which then
// serves it outside the Go runtime (see DetachFD) until AttachSocket. While
// detached, Conn is a placeholder whose Close calls closed: the engine must
// then close the descriptor itself, from the goroutine that uses it, and
// give the session no more bytes. TLS sessions cannot be detached.
func (s *Session) DetachSocket(closed func()) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return -1, net.ErrClosed
	}
	if s.tlsState != nil {
		return -1, ErrNotDetachable
	}
	conn := s.conn
	if ic, ok := conn.(*idleConn); ok {
		conn = ic.Conn
	}
	fd, err := DetachFD(conn)
	if err != nil {
		return -1, err
	}
	s.conn = &detachedConn{local: conn.LocalAddr(), remote: conn.RemoteAddr(), closed: closed}
	return fd, nil
}

// AttachSocket gives the session back its client socket, detached with
// DetachSocket, as its connection (with the idle timeout applied). When the
// session was closed meanwhile, the socket is closed and net.ErrClosed
// returned.
func (s *Session) AttachSocket(fd int) error {
	conn, err := AttachFD(fd)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		_ = conn.Close()
		return net.ErrClosed
	}
	s.conn = s.wrapIdle(conn)
	return nil
}

// IdleTimeout is the listener's idle timeout (0: none), for an engine that
// serves a detached socket and so must apply it itself.
func (s *Session) IdleTimeout() time.Duration { return s.l.cfg.IdleTimeout }

// detachedConn stands in for a client connection an engine serves outside
// the Go runtime. Only its addresses and Close work.
type detachedConn struct {
	local, remote net.Addr
	closed        func()
}

var errDetached = errors.New("the connection is served by the engine's event loop")

func (c *detachedConn) Read([]byte) (int, error)         { return 0, errDetached }
func (c *detachedConn) Write([]byte) (int, error)        { return 0, errDetached }
func (c *detachedConn) Close() error                     { c.closed(); return nil }
func (c *detachedConn) LocalAddr() net.Addr              { return c.local }
func (c *detachedConn) RemoteAddr() net.Addr             { return c.remote }
func (c *detachedConn) SetDeadline(time.Time) error      { return nil }
func (c *detachedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *detachedConn) SetWriteDeadline(time.Time) error { return nil }
