package httpapi

import (
	"container/list"
	"context"
	"io"
	"sync"
)

// pool keeps at most max open instances, one per credential, closing the
// least recently used when it must make room. An evicted instance still in
// use by a request is closed when that request releases it.
type pool[T io.Closer] struct {
	open func(ctx context.Context, credential string) (T, error)
	max  int

	mu    sync.Mutex
	lru   *list.List // of *entry[T], most recent first
	byKey map[string]*list.Element
}

type entry[T io.Closer] struct {
	key     string
	ready   chan struct{} // closed once open has returned
	val     T
	err     error
	refs    int
	evicted bool
}

func newPool[T io.Closer](max int, open func(context.Context, string) (T, error)) *pool[T] {
	return &pool[T]{open: open, max: max, lru: list.New(), byKey: map[string]*list.Element{}}
}

// get returns the instance for credential, opening it if needed, and a
// release function the caller must call when done with it.
func (p *pool[T]) get(ctx context.Context, credential string) (T, func(), error) {
	p.mu.Lock()
	el, ok := p.byKey[credential]
	var e *entry[T]
	if ok {
		e = el.Value.(*entry[T])
		p.lru.MoveToFront(el)
	} else {
		e = &entry[T]{key: credential, ready: make(chan struct{})}
		p.byKey[credential] = p.lru.PushFront(e)
		go p.fill(e) // detached from ctx: other requests may wait for it too
	}
	e.refs++
	idle := p.evictLocked()
	p.mu.Unlock()
	for _, old := range idle {
		p.closeSoon(old)
	}

	release := func() { p.release(e) }
	select {
	case <-e.ready:
	case <-ctx.Done():
		release()
		var zero T
		return zero, nil, ctx.Err()
	}
	if e.err != nil {
		release()
		var zero T
		return zero, nil, e.err
	}
	return e.val, release, nil
}

func (p *pool[T]) fill(e *entry[T]) {
	e.val, e.err = p.open(context.Background(), e.key)
	if e.err != nil { // forget failures so the next request retries
		p.mu.Lock()
		if el, ok := p.byKey[e.key]; ok && el.Value == e {
			p.lru.Remove(el)
			delete(p.byKey, e.key)
		}
		p.mu.Unlock()
	}
	close(e.ready)
}

// evictLocked drops least recently used entries beyond max and returns
// those no request holds, for the caller to close once unlocked.
func (p *pool[T]) evictLocked() []*entry[T] {
	var idle []*entry[T]
	for p.lru.Len() > p.max {
		el := p.lru.Back()
		e := el.Value.(*entry[T])
		p.lru.Remove(el)
		delete(p.byKey, e.key)
		e.evicted = true
		if e.refs == 0 {
			idle = append(idle, e)
		}
	}
	return idle
}

// closeSoon closes e now if it is open, or once its open finishes.
func (p *pool[T]) closeSoon(e *entry[T]) {
	select {
	case <-e.ready:
		p.closeWhenReady(e)
	default:
		go p.closeWhenReady(e)
	}
}

func (p *pool[T]) release(e *entry[T]) {
	p.mu.Lock()
	e.refs--
	closeIt := e.evicted && e.refs == 0
	p.mu.Unlock()
	if closeIt {
		p.closeSoon(e)
	}
}

func (p *pool[T]) closeWhenReady(e *entry[T]) {
	<-e.ready
	if e.err == nil {
		e.val.Close()
	}
}

// closeAll closes every instance and empties the pool.
func (p *pool[T]) closeAll() {
	p.mu.Lock()
	var all []*entry[T]
	for el := p.lru.Front(); el != nil; el = el.Next() {
		all = append(all, el.Value.(*entry[T]))
	}
	p.lru.Init()
	p.byKey = map[string]*list.Element{}
	p.mu.Unlock()
	for _, e := range all {
		p.closeWhenReady(e)
	}
}
