//go:build unix

package store_test

import (
	"io/fs"
	"syscall"
)

// inode is fi's inode number: a file replaced by another has a new one.
func inode(fi fs.FileInfo) uint64 { return uint64(fi.Sys().(*syscall.Stat_t).Ino) }
