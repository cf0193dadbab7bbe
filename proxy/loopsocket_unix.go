//go:build unix

package proxy

import (
	"io"

	"golang.org/x/sys/unix"
)

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
		n, err := unix.Read(s.FD, p)
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
		n, err := unix.Write(s.FD, p[done:])
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
		n, err := unix.Write(s.FD, s.backlog)
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
