//go:build !unix

package store_test

import "io/fs"

// inode is 0 where os.FileInfo carries no inode number; the snapshot then
// compares contents, mode and modification time only.
func inode(fs.FileInfo) uint64 { return 0 }
