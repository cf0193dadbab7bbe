package proxy

import (
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Wait reports nothing without blocking when nothing is ready (timeout 0),
// nothing after a timeout, the eventfd once a request is posted, and a
// watched socket once it holds data, also data that comes while Wait
// sleeps; Take returns the requests in order. The waits on nothing and for
// data sent later run both idle and busy (after a Wait that found two
// events), where Wait yields before it sleeps: the yield must not cut the
// wait short nor miss what comes after it.
func TestPollerWait(t *testing.T) {
	p, err := NewPoller[int]()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	events := make([]unix.EpollEvent, 8)
	if n, err := p.Wait(events, 0); n != 0 || err != nil {
		t.Fatalf("Wait on nothing: %d, %v", n, err)
	}
	start := time.Now()
	if n, err := p.Wait(events, 20); n != 0 || err != nil || time.Since(start) < 15*time.Millisecond {
		t.Fatalf("Wait 20 ms on nothing: %d, %v after %v", n, err, time.Since(start))
	}
	p.Post(1, false)
	p.Post(2, false)
	n, err := p.Wait(events, -1)
	if err != nil || n != 1 || !p.IsWake(int(events[0].Fd)) {
		t.Fatalf("Wait after Post: %d, %v", n, err)
	}
	if got := p.Take(); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("Take: %v", got)
	}
	a, b := loopbackPair(t)
	s := &LoopSocket{FD: b}
	if err := p.Watch(s, unix.EPOLLIN); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteNonblock(a, []byte("x")); err != nil {
		t.Fatal(err)
	}
	n, err = p.Wait(events, 1000)
	if err != nil || n != 1 || int(events[0].Fd) != b {
		t.Fatalf("Wait for the socket: %d, %v", n, err)
	}
	var buf [8]byte
	if _, err := ReadNonblock(b, buf[:]); err != nil {
		t.Fatal(err)
	}
	awaitLater := func(what string) {
		t.Helper()
		written := make(chan struct{})
		// Waited for even when the test fails: the write must not reach a
		// descriptor number the test's cleanup freed for reuse.
		defer func() { <-written }()
		go func() {
			defer close(written)
			time.Sleep(20 * time.Millisecond)
			_, _ = WriteNonblock(a, []byte("y"))
		}()
		n, err := p.Wait(events, -1)
		if err != nil || n != 1 || int(events[0].Fd) != b {
			t.Fatalf("%s: Wait for data sent while it sleeps: %d, %v", what, n, err)
		}
		if _, err := ReadNonblock(b, buf[:]); err != nil {
			t.Fatal(err)
		}
	}
	awaitLater("idle")

	c, d := loopbackPair(t)
	if err := p.Watch(&LoopSocket{FD: d}, unix.EPOLLIN); err != nil {
		t.Fatal(err)
	}
	awaitBoth := func() {
		t.Helper()
		_, _ = WriteNonblock(a, []byte("x"))
		_, _ = WriteNonblock(c, []byte("x"))
		if n, err := p.Wait(events, 1000); err != nil || n != 2 || !p.busy {
			t.Fatalf("Wait for two sockets: %d, %v, busy %v", n, err, p.busy)
		}
		_, _ = ReadNonblock(b, buf[:])
		_, _ = ReadNonblock(d, buf[:])
	}
	awaitBoth()
	start = time.Now()
	if n, err := p.Wait(events, 20); n != 0 || err != nil || time.Since(start) < 15*time.Millisecond {
		t.Fatalf("busy: Wait 20 ms on nothing: %d, %v after %v", n, err, time.Since(start))
	}
	awaitBoth()
	awaitLater("busy")
	if p.Post(3, true); p.Post(4, false) {
		t.Fatal("Post after the last request was accepted")
	}
}
