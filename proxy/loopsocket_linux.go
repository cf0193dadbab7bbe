package proxy

import (
	"io"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ReadNonblock and WriteNonblock are read and write on a non-blocking
// descriptor as raw system calls: without the Go runtime's bookkeeping for
// a call that may block (entersyscall and exitsyscall), which adds about a
// tenth to a small loopback read or write (BenchmarkSocketRoundTrip). They
// must only be used on descriptors in non-blocking mode, and by a goroutine
// that passes through the scheduler now and then (the event loops yield in
// Poller.Wait): a raw call cannot be preempted.
func ReadNonblock(fd int, p []byte) (int, error) { return rawTransfer(unix.SYS_READ, fd, p) }

// WriteNonblock: see ReadNonblock.
func WriteNonblock(fd int, p []byte) (int, error) { return rawTransfer(unix.SYS_WRITE, fd, p) }

func rawTransfer(trap uintptr, fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// LoopSocket is a non-blocking socket descriptor owned by an engine's event
// loop (see DetachFD), used as the source of a session's reader and the sink
// of its writer. It is used by the loop's goroutine only.
type LoopSocket struct {
	FD int
	// Events are the epoll events the loop registered for the socket.
	Events uint32
	// backlog holds what was written but not taken by the socket yet.
	backlog []byte
}

// Read reads what the socket holds; ErrWouldBlock when it holds nothing,
// io.EOF at the end of the stream.
func (s *LoopSocket) Read(p []byte) (int, error) {
	for {
		n, err := ReadNonblock(s.FD, p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, ErrWouldBlock
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Write writes p, keeping what the socket does not take in the backlog
// (WriteBacklog sends it once epoll reports room). It never fails: a peer
// that went away is noticed by the reads.
func (s *LoopSocket) Write(p []byte) (int, error) {
	if len(s.backlog) > 0 {
		s.backlog = append(s.backlog, p...)
		return len(p), nil
	}
	done := 0
	for done < len(p) {
		n, err := WriteNonblock(s.FD, p[done:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			s.backlog = append(s.backlog, p[done:]...)
			break
		}
		if err != nil {
			break // dropped: the peer is gone
		}
		done += n
	}
	return len(p), nil
}

// WriteBacklog writes what it can of the backlog; a failed write drops it.
func (s *LoopSocket) WriteBacklog() {
	for len(s.backlog) > 0 {
		n, err := WriteNonblock(s.FD, s.backlog)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			s.backlog = nil
			return
		}
		s.backlog = s.backlog[n:]
	}
	s.backlog = nil
}

// Backlog is how many written bytes wait for room in the socket.
func (s *LoopSocket) Backlog() int { return len(s.backlog) }

// TakeBacklog returns the bytes waiting and forgets them, for whoever
// writes to the socket next (the session's goroutine after a handback).
func (s *LoopSocket) TakeBacklog() []byte {
	b := s.backlog
	s.backlog = nil
	return b
}
