//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package store

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// openIn opens the file name (one path element) of directory dir.
func openIn(dir *os.File, name string) (*os.File, error) {
	return os.Open(filepath.Join(dir.Name(), name))
}

// openDir opens the directory path.
func openDir(path string) (*os.File, error) { return os.Open(path) }

// statIn checks that name (one path element) of directory dir exists as a
// regular file.
func statIn(dir *os.File, name string) error {
	fi, err := os.Lstat(filepath.Join(dir.Name(), name))
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, filepath.Join(dir.Name(), name))
	}
	return nil
}

// linkIn hard-links name of directory from as newName of directory to.
func linkIn(from *os.File, name string, to *os.File, newName string) error {
	return os.Link(filepath.Join(from.Name(), name), filepath.Join(to.Name(), newName))
}

// renameIn renames name to newName within directory dir.
func renameIn(dir *os.File, name, newName string) error {
	return os.Rename(filepath.Join(dir.Name(), name), filepath.Join(dir.Name(), newName))
}

// removeIn removes the file name of directory dir.
func removeIn(dir *os.File, name string) error {
	return os.Remove(filepath.Join(dir.Name(), name))
}

// readIn reads the regular file name of directory dir whole (at most limit
// bytes, else ErrTooLarge) into buf when it has the capacity.
func readIn(dir *os.File, name string, limit int64, buf []byte) ([]byte, error) {
	f, err := openIn(dir, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, f.Name())
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, over %d", ErrTooLarge, f.Name(), fi.Size(), limit)
	}
	b := bytes.NewBuffer(buf[:0])
	if _, err := b.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, err
	}
	if int64(b.Len()) > limit {
		return nil, fmt.Errorf("%w: %s grew over %d bytes", ErrTooLarge, f.Name(), limit)
	}
	return b.Bytes(), nil
}
