package bolt

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// TestDrainEndsSessionsAtIdlePoints: on shutdown, a session inside a
// transaction keeps working until it commits, then is closed; the drain
// completes before its deadline.
func TestDrainEndsSessionsAtIdlePoints(t *testing.T) {
	peer := newScriptedPeer(t)
	p := startProxy(t, peer, Options{})
	peer.onRun("RETURN 1 AS x", []string{"x"}, []any{int64(1)})
	inTx := dialRaw(t, p.addr, bolt58)
	inTx.logon(p.token("acme"))
	idle := dialRaw(t, p.addr, bolt58)
	idle.logon(p.token("acme"))

	inTx.send(msgBegin, kv())
	inTx.expect(msgSuccess)

	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		drained <- p.listener.Shutdown(ctx)
	}()

	if err := readUntilClosed(idle); !errors.Is(err, io.EOF) {
		t.Errorf("the idle session: %v, want closed", err)
	}
	inTx.send(msgRun, "RETURN 1 AS x", kv(), kv())
	inTx.send(msgPull, kv("n", int64(-1)))
	inTx.expect(msgSuccess)
	inTx.expect(msgRecord)
	inTx.expect(msgSuccess)
	inTx.send(msgCommit)
	inTx.expect(msgSuccess)
	if err := readUntilClosed(inTx); !errors.Is(err, io.EOF) {
		t.Errorf("after COMMIT: %v, want closed", err)
	}
	if err := <-drained; err != nil {
		t.Errorf("drain: %v", err)
	}
}

func readUntilClosed(c *rawClient) error {
	_, err := c.in.read()
	return err
}
