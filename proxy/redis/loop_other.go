//go:build !linux

package redis

// eventLoop exists on Linux only (epoll); elsewhere every session is served
// by its own goroutine.
type eventLoop struct{}

func newEventLoops(*Engine, int) []*eventLoop { return nil }

func (*eventLoop) close() {}

func (c *clientSession) serveInLoop() (served bool, err error) { return false, nil }

func (*eventLoop) upstreamID(int) int64 { return 0 }
