//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package store

import "golang.org/x/sys/unix"

func sysOpenat(dirfd int, base, suffix string, flags int) (int, error) {
	return unix.Openat(dirfd, base+suffix, flags, 0)
}
