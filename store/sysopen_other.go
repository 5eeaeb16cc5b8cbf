//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package store

import "golang.org/x/sys/unix"

func sysOpenat(dirfd int, base, suffix string, flags int) (int, error) {
	return unix.Openat(dirfd, base+suffix, flags, 0)
}

func sysLinkat(fromfd int, from string, tofd int, to string) error {
	return unix.Linkat(fromfd, from, tofd, to, 0)
}

func sysRenameat(dirfd int, from, base, suffix string) error {
	return unix.Renameat(dirfd, from, dirfd, base+suffix)
}
