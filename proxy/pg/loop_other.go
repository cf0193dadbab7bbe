//go:build !linux

package pg

// eventLoop exists on Linux only (epoll); elsewhere every session is served
// by its own goroutine.
type eventLoop struct{}

type loopClient struct {
	applying  bool
	applyHold bool
}

type loopRequestKind uint8

const reqRelease loopRequestKind = 0

type loopRequest struct {
	kind loopRequestKind
	srv  *ServerConn
}

func newEventLoop(*Engine) *eventLoop { return nil }

func (*eventLoop) close()                                {}
func (*eventLoop) poolFreed()                            {}
func (*eventLoop) post(loopRequest) bool                 { return false }
func (*eventLoop) release(*ServerConn)                   {}
func (*eventLoop) take(*loopClient) (*ServerConn, error) { return nil, errNoServer }

func (c *clientSession) loopable() bool     { return false }
func (c *clientSession) serveInLoop() error { return nil }

func (c *ServerConn) servedBy() *eventLoop { return nil }
func (c *ServerConn) toRuntime() error     { return nil }
