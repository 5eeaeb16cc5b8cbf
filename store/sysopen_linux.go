package store

import (
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls of reading and re-signing every version of a store,
// with their names made NUL-terminated on the stack when they fit:
// x/sys/unix copies each name to the heap, and a re-verification run
// passes a dozen a version.

// cname writes a+b NUL-terminated into buf; false if it does not fit or
// holds a NUL (the caller then lets x/sys/unix refuse it).
func cname(buf []byte, a, b string) bool {
	if len(a)+len(b) >= len(buf) || strings.IndexByte(a, 0) >= 0 || strings.IndexByte(b, 0) >= 0 {
		return false
	}
	n := copy(buf, a)
	n += copy(buf[n:], b)
	buf[n] = 0
	return true
}

// sysOpenat is unix.Openat of the name base+suffix, read-only.
func sysOpenat(dirfd int, base, suffix string, flags int) (int, error) {
	var buf [256]byte
	if !cname(buf[:], base, suffix) {
		return unix.Openat(dirfd, base+suffix, flags, 0)
	}
	r, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&buf[0])), uintptr(flags), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// sysLinkat is unix.Linkat(fromfd, from, tofd, to, 0).
func sysLinkat(fromfd int, from string, tofd int, to string) error {
	var a, b [256]byte
	if !cname(a[:], from, "") || !cname(b[:], to, "") {
		return unix.Linkat(fromfd, from, tofd, to, 0)
	}
	_, _, errno := unix.Syscall6(unix.SYS_LINKAT, uintptr(fromfd), uintptr(unsafe.Pointer(&a[0])), uintptr(tofd), uintptr(unsafe.Pointer(&b[0])), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// sysRenameat is unix.Renameat(dirfd, from, dirfd, base+suffix), as
// renameat2 with no flags (every architecture has it; not all renameat).
func sysRenameat(dirfd int, from, base, suffix string) error {
	var a, b [256]byte
	if !cname(a[:], from, "") || !cname(b[:], base, suffix) {
		return unix.Renameat(dirfd, from, dirfd, base+suffix)
	}
	_, _, errno := unix.Syscall6(unix.SYS_RENAMEAT2, uintptr(dirfd), uintptr(unsafe.Pointer(&a[0])), uintptr(dirfd), uintptr(unsafe.Pointer(&b[0])), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
