package httpapi

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

type fakeEngine struct {
	key    string
	closed atomic.Int32
}

func (f *fakeEngine) Close() error {
	f.closed.Add(1)
	return nil
}

type opener struct {
	mu     sync.Mutex
	opened map[string][]*fakeEngine
	fail   map[string]bool
}

func (o *opener) open(_ context.Context, key string) (*fakeEngine, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail[key] {
		return nil, errors.New("refused")
	}
	f := &fakeEngine{key: key}
	o.opened[key] = append(o.opened[key], f)
	return f, nil
}

func TestPoolReusesAndEvicts(t *testing.T) {
	ctx := context.Background()
	o := &opener{opened: map[string][]*fakeEngine{}, fail: map[string]bool{}}
	p := newPool(2, o.open)
	get := func(key string) (*fakeEngine, func()) {
		t.Helper()
		f, release, err := p.get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return f, release
	}
	a, ra := get("a")
	ra()
	a2, ra2 := get("a")
	ra2()
	if a != a2 || len(o.opened["a"]) != 1 {
		t.Fatal("same credential opened twice")
	}
	_, rb := get("b")
	rb()
	heldA, releaseA := get("a") // a is now most recent and in use
	_, rc := get("c")           // evicts b (least recent), not a
	rc()
	if b := o.opened["b"][0]; b.closed.Load() != 1 {
		t.Fatal("evicted idle engine not closed")
	}
	if heldA.closed.Load() != 0 {
		t.Fatal("in-use engine closed")
	}
	_, rd := get("d") // evicts a, which is still held
	rd()
	if heldA.closed.Load() != 0 {
		t.Fatal("held engine closed on eviction")
	}
	releaseA()
	if heldA.closed.Load() != 1 {
		t.Fatal("evicted engine not closed on release")
	}
	if _, rb2 := get("b"); rb2 != nil {
		rb2()
	}
	if len(o.opened["b"]) != 2 {
		t.Fatal("evicted credential not reopened")
	}
	p.closeAll()
	for key, list := range o.opened {
		for _, f := range list {
			if f.closed.Load() != 1 {
				t.Errorf("%s closed %d times", key, f.closed.Load())
			}
		}
	}
}

func TestPoolRetriesFailedOpen(t *testing.T) {
	ctx := context.Background()
	o := &opener{opened: map[string][]*fakeEngine{}, fail: map[string]bool{"x": true}}
	p := newPool(4, o.open)
	if _, _, err := p.get(ctx, "x"); err == nil {
		t.Fatal("failed open not reported")
	}
	o.mu.Lock()
	o.fail["x"] = false
	o.mu.Unlock()
	f, release, err := p.get(ctx, "x")
	if err != nil {
		t.Fatalf("failed open not retried: %v", err)
	}
	release()
	if f.key != "x" {
		t.Fatal("wrong engine")
	}
}

func TestPoolConcurrentFirstUseOpensOnce(t *testing.T) {
	o := &opener{opened: map[string][]*fakeEngine{}, fail: map[string]bool{}}
	p := newPool(4, o.open)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			_, release, err := p.get(context.Background(), "k")
			if err != nil {
				t.Error(err)
				return
			}
			release()
		})
	}
	wg.Wait()
	if len(o.opened["k"]) != 1 {
		t.Fatalf("opened %d times", len(o.opened["k"]))
	}
}
