//go:build !unix

package proxy

func dupNonblocking(int) (int, error) { return -1, ErrNotDetachable }
