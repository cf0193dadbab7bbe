//go:build unix

package proxy

import "golang.org/x/sys/unix"

// dupNonblocking duplicates a socket descriptor, close-on-exec and in
// non-blocking mode.
func dupNonblocking(fd int) (int, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		_ = unix.Close(nfd)
		return -1, err
	}
	return nfd, nil
}
