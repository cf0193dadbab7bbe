package proxy

import "iter"

// FDTable maps the descriptors an event loop serves to what it serves on
// them. Descriptors are small and dense (the kernel hands out the lowest
// free one), so the table is a slice indexed by descriptor: the lookup each
// epoll event needs is an index, not a hash. Only the loop's goroutine uses
// it.
type FDTable[T any] struct {
	byFD []*T
	n    int
}

// Get returns what is stored for fd, nil when nothing is.
func (t *FDTable[T]) Get(fd int) *T {
	if uint(fd) < uint(len(t.byFD)) {
		return t.byFD[fd]
	}
	return nil
}

// Set stores v for fd (fd ≥ 0, v not nil).
func (t *FDTable[T]) Set(fd int, v *T) {
	if fd >= len(t.byFD) {
		t.byFD = append(t.byFD, make([]*T, fd+1-len(t.byFD))...)
		t.byFD = t.byFD[:cap(t.byFD)]
	}
	if t.byFD[fd] == nil {
		t.n++
	}
	t.byFD[fd] = v
}

// Delete forgets fd.
func (t *FDTable[T]) Delete(fd int) {
	if uint(fd) < uint(len(t.byFD)) && t.byFD[fd] != nil {
		t.byFD[fd] = nil
		t.n--
	}
}

// Len is how many descriptors are stored.
func (t *FDTable[T]) Len() int { return t.n }

// All yields the stored descriptors and values in descriptor order; the
// loop body may Delete the descriptor it is given.
func (t *FDTable[T]) All() iter.Seq2[int, *T] {
	return func(yield func(int, *T) bool) {
		for fd, v := range t.byFD {
			if v != nil && !yield(fd, v) {
				return
			}
		}
	}
}
