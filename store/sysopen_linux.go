package store

import (
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysOpenat is unix.Openat of the name base+suffix without the copies of
// it x/sys/unix and the concatenation put on the heap: the name is made
// NUL-terminated on the stack when it fits (a re-verification run opens
// ten files a version).
func sysOpenat(dirfd int, base, suffix string, flags int) (int, error) {
	var buf [256]byte
	n := len(base) + len(suffix)
	if n >= len(buf) || strings.IndexByte(base, 0) >= 0 || strings.IndexByte(suffix, 0) >= 0 {
		return unix.Openat(dirfd, base+suffix, flags, 0)
	}
	copy(buf[copy(buf[:], base):], suffix)
	r, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&buf[0])), uintptr(flags), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}
