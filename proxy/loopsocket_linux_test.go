package proxy

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// loopbackPair is the two ends of a loopback TCP connection, detached from
// the runtime (non-blocking descriptors).
func loopbackPair(tb testing.TB) (int, int) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	dialed, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	accepted, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	a, err := DetachFD(dialed)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := DetachFD(accepted)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = unix.Close(a); _ = unix.Close(b) })
	return a, b
}

func TestNonblockReadWrite(t *testing.T) {
	a, b := loopbackPair(t)
	buf := make([]byte, 16)
	if _, err := ReadNonblock(b, buf); err != unix.EAGAIN {
		t.Fatalf("read of an empty socket: %v, want EAGAIN", err)
	}
	if n, err := WriteNonblock(a, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	var n int
	var err error
	for n, err = ReadNonblock(b, buf); err == unix.EAGAIN; n, err = ReadNonblock(b, buf) {
	}
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read: %q, %v", buf[:n], err)
	}
	if n, err := ReadNonblock(b, nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", n, err)
	}
	_ = unix.Close(a)
	for n, err = ReadNonblock(b, buf); err == unix.EAGAIN; n, err = ReadNonblock(b, buf) {
	}
	if n != 0 || err != nil {
		t.Fatalf("read after the peer closed: %d, %v; want 0 (end of stream)", n, err)
	}
}

// BenchmarkSocketRoundTrip is a 64-byte write and its read on a loopback
// connection, with the runtime's system calls and with the raw ones the
// event loops use.
func BenchmarkSocketRoundTrip(b *testing.B) {
	for _, c := range []struct {
		name        string
		read, write func(int, []byte) (int, error)
	}{
		{"runtime", unix.Read, unix.Write},
		{"raw", ReadNonblock, WriteNonblock},
	} {
		b.Run(c.name, func(b *testing.B) {
			x, y := loopbackPair(b)
			buf := make([]byte, 64)
			for b.Loop() {
				if _, err := c.write(x, buf); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < len(buf); {
					n, err := c.read(y, buf[got:])
					if err != nil && err != unix.EAGAIN {
						b.Fatal(err)
					}
					got += n
				}
			}
		})
	}
}
