package proxy

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Handback returns a session from an engine's event loop to its goroutine:
// its client socket (-1 when the loop closed it), bytes for the client the
// socket did not take yet, and, when the session must end, why.
type Handback struct {
	FD      int
	Backlog []byte
	Err     error
}

// AwaitHandback waits, in the session's goroutine, for its event loop to
// hand it back on back. When the session is closed or its listener starts
// draining first, it tells the loop (drop, drain) and waits on.
func (s *Session) AwaitHandback(back <-chan Handback, drop, drain func()) Handback {
	select {
	case hb := <-back:
		return hb
	case <-s.Context().Done():
		drop()
	case <-s.Draining():
		drain()
	}
	return <-back
}

var (
	// ErrIdle ends a session that sent nothing for the idle timeout while
	// an event loop served it.
	ErrIdle = fmt.Errorf("idle timeout: %w", os.ErrDeadlineExceeded)
	// ErrSessionClosed: the session was closed while an event loop served
	// it; the loop closed its socket.
	ErrSessionClosed = errors.New("the session was closed")
)

// Poller is the core an engine's event loop is built on: an epoll instance
// for the sockets it serves (LoopSocket), and an inbox through which other
// goroutines hand the loop requests of type R, an eventfd waking it. Only
// Post and Stop may be called from other goroutines.
type Poller[R any] struct {
	epfd   int
	wakefd int

	mu      sync.Mutex
	inbox   []R
	stopped bool

	lastYield time.Time
	// busy: the last Wait found more than one event, or found some
	// without sleeping. A loop that is not serves one thing at a time
	// (a single client, say) and goes straight to the blocking wait.
	busy bool
}

// NewPoller opens the epoll instance and the eventfd.
func NewPoller[R any]() (*Poller[R], error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wakefd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return &Poller[R]{epfd: epfd, wakefd: wakefd}, nil
}

// Post queues r for the loop and wakes it; false when the poller has
// stopped. last makes r the final request: nothing is queued after it.
func (p *Poller[R]) Post(r R, last bool) bool {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return false
	}
	p.inbox = append(p.inbox, r)
	first := len(p.inbox) == 1
	p.stopped = last
	p.mu.Unlock()
	if first {
		var one = [8]byte{1}
		_, _ = unix.Write(p.wakefd, one[:])
	}
	return true
}

// Stop refuses further requests and returns those not taken yet.
func (p *Poller[R]) Stop() []R {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	reqs := p.inbox
	p.inbox = nil
	return reqs
}

// yieldEvery is how often Wait lets the Go scheduler run the loop's
// goroutine anew. A goroutine that has run for 10 ms without passing
// through the scheduler is preempted by the runtime's monitor thread, which
// then also takes its processor away at each of its system calls and keeps
// waking every 20 µs to do so: on a busy loop that costs about as much CPU
// as the loop's own work. It is also when, with a single P (GOMAXPROCS=1),
// a busy loop lets the process's other goroutines run: the loop's reads and
// writes are raw system calls, which do not give the P up. A yield is not
// free either: the runtime wakes another thread, which takes the goroutine
// or spins looking for work and sleeps again. So the interval is as long as
// keeps the monitor from ever seeing 10 ms without one, with room for a
// long round of the loop.
const yieldEvery = 8 * time.Millisecond

// Wait waits up to timeout milliseconds (-1: no limit) for events. When
// the loop is busy, it first looks for events without waiting, as a raw
// system call (see ReadNonblock): a busy loop finds some, and only a wait
// that may block pays for the runtime's bookkeeping. Finding none, it gives
// its CPU away once (sched_yield) and looks again before it sleeps: what the
// loop wrote last is often being worked on by a thread runnable on this
// very CPU (the server answering the batch just sent, a client reading its
// reply), and letting it run first finds its answer or its next request
// without the loop going to sleep and being woken for it. A wake-up is a
// context switch for the loop and costs the thread that wakes it (the
// client, usually) more than its write, across CPUs an inter-processor
// interrupt, which in a virtual machine is an exit to the hypervisor; a
// yield with nothing else to run returns at once. On the two-vCPU guest of
// docs/performance.md it halved the loop's sleeps and raised
// redis-benchmark's unpipelined rate through the proxy by a tenth. A loop
// serving one thing at a time would only pay the two extra calls before
// each sleep, so it goes to sleep at once.
func (p *Poller[R]) Wait(events []unix.EpollEvent, timeout int) (int, error) {
	if now := time.Now(); now.Sub(p.lastYield) >= yieldEvery {
		p.lastYield = now
		runtime.Gosched()
	}
	if len(events) == 0 {
		return 0, nil
	}
	if p.busy || timeout == 0 {
		n, errno := p.poll(events)
		if errno == 0 && n == 0 && timeout != 0 {
			_, _, _ = unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
			n, errno = p.poll(events)
		}
		switch {
		case errno == unix.EINTR:
			// a signal: wait as below
		case errno != 0:
			return 0, errno
		case n > 0 || timeout == 0:
			return n, nil
		}
	}
	n, err := unix.EpollWait(p.epfd, events, timeout)
	p.busy = n > 1
	return n, err
}

// poll returns the events ready now, without waiting, as a raw system call.
func (p *Poller[R]) poll(events []unix.EpollEvent) (int, unix.Errno) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	return int(n), errno
}

// IsWake reports whether fd is the poller's eventfd: requests are waiting
// (Take).
func (p *Poller[R]) IsWake(fd int) bool { return fd == p.wakefd }

// Take returns the requests waiting.
func (p *Poller[R]) Take() []R {
	var buf [8]byte
	_, _ = ReadNonblock(p.wakefd, buf[:])
	p.mu.Lock()
	defer p.mu.Unlock()
	reqs := p.inbox
	p.inbox = nil
	return reqs
}

// Watch sets the epoll events registered for s (0: none).
func (p *Poller[R]) Watch(s *LoopSocket, want uint32) error {
	if want == s.Events {
		return nil
	}
	op := unix.EPOLL_CTL_MOD
	switch {
	case want == 0:
		op = unix.EPOLL_CTL_DEL
	case s.Events == 0:
		op = unix.EPOLL_CTL_ADD
	}
	if err := unix.EpollCtl(p.epfd, op, s.FD, &unix.EpollEvent{Events: want, Fd: int32(s.FD)}); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	s.Events = want
	return nil
}

// Close closes the epoll instance and the eventfd; the loop has ended.
func (p *Poller[R]) Close() {
	_ = unix.Close(p.epfd)
	_ = unix.Close(p.wakefd)
}
