package proxy

import (
	"maps"
	"testing"
)

// TestFDTableFollowsAMap runs one sequence of operations on an FDTable and
// on a map, and checks after each that both hold the same: descriptor
// reuse, growth past the table's end, deleting what is not there, and
// deleting while iterating.
func TestFDTableFollowsAMap(t *testing.T) {
	type op struct {
		del bool
		fd  int
	}
	ops := []op{
		{fd: 5}, {fd: 3}, {fd: 5}, // 5 set twice: counted once
		{fd: 700},             // far past the end
		{del: true, fd: 3},    // reused below
		{fd: 3},               //
		{del: true, fd: 9},    // never set
		{del: true, fd: 4000}, // past the end
		{del: true, fd: 700},
		{fd: 0},
	}
	var table FDTable[int]
	want := map[int]*int{}
	for i, o := range ops {
		if o.del {
			table.Delete(o.fd)
			delete(want, o.fd)
		} else {
			v := new(int)
			*v = i
			table.Set(o.fd, v)
			want[o.fd] = v
		}
		got := maps.Collect(table.All())
		if !maps.Equal(got, want) || table.Len() != len(want) {
			t.Fatalf("after op %d %+v: table holds %v (Len %d), want %v", i, o, got, table.Len(), want)
		}
		for _, fd := range []int{-1, 0, 3, 5, 9, 700, 4000} {
			if table.Get(fd) != want[fd] {
				t.Fatalf("after op %d: Get(%d) = %p, want %p", i, fd, table.Get(fd), want[fd])
			}
		}
	}
	for fd := range table.All() {
		table.Delete(fd)
	}
	if table.Len() != 0 || len(maps.Collect(table.All())) != 0 {
		t.Fatalf("deleting every descriptor while iterating left %d", table.Len())
	}
}
