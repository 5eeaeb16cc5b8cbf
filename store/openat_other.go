//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// A dirFD is a directory of the store, by its path: files are opened by
// their path within it.
type dirFD struct{ path string }

// Name is the directory's path.
func (d dirFD) Name() string { return d.path }

// Close does nothing: nothing is open.
func (d dirFD) Close() error { return nil }

// openIn opens the file name (one path element) of directory dir.
func openIn(dir dirFD, name string) (*os.File, error) {
	return os.Open(filepath.Join(dir.Name(), name))
}

// openDir checks that path is a directory.
func openDir(path string) (dirFD, error) {
	fi, err := os.Stat(path)
	if err == nil && !fi.IsDir() {
		err = &os.PathError{Op: "open", Path: path, Err: errors.New("not a directory")}
	}
	if err != nil {
		return dirFD{}, err
	}
	return dirFD{path}, nil
}

// statIn checks that name (one path element) of directory dir exists as a
// regular file.
func statIn(dir dirFD, name string) error {
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
func linkIn(from dirFD, name string, to dirFD, newName string) error {
	return os.Link(filepath.Join(from.Name(), name), filepath.Join(to.Name(), newName))
}

// renameInto renames name to base+suffix within directory dir.
func renameInto(dir dirFD, name, base, suffix string) error {
	return os.Rename(filepath.Join(dir.Name(), name), filepath.Join(dir.Name(), base+suffix))
}

// removeIn removes the file name of directory dir.
func removeIn(dir dirFD, name string) error {
	return os.Remove(filepath.Join(dir.Name(), name))
}

// readIn reads the regular file name of directory dir whole (at most limit
// bytes, else ErrTooLarge) into buf when it has the capacity.
func readIn(dir dirFD, base, suffix string, limit int64, buf []byte) ([]byte, error) {
	f, err := openIn(dir, base+suffix)
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

// readInIfExists is readIn, but a file that does not exist is nil data and
// no error.
func readInIfExists(dir dirFD, base, suffix string, limit int64, buf []byte) ([]byte, error) {
	data, err := readIn(dir, base, suffix, limit, buf)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}
