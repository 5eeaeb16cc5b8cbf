//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package store

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// A dirFD is an open directory of the store, by its descriptor: files are
// opened relative to it. A bare descriptor, not an *os.File: os.NewFile
// costs an fcntl and a finalizer, per version of a re-verification run.
type dirFD struct {
	fd   int
	path string
}

// Name is the directory's path, for messages.
func (d dirFD) Name() string { return d.path }

// Close closes the directory.
func (d dirFD) Close() error { return unix.Close(d.fd) }

// openIn opens the file name (one path element) of directory dir for
// reading, never following a symbolic link. openat and os.NewFile: a file
// the runtime does not try to register with its poller, which os.Open and
// os.Root do for every file (four fcntl and an epoll_ctl that fails for
// regular files; a third of the system calls of reading a small file).
func openIn(dir dirFD, name string) (*os.File, error) {
	fd, err := openat(dir, name)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name)), nil
}

// openDir opens the directory path, not following a symbolic link as its
// last element.
func openDir(path string) (dirFD, error) {
	fd, err := eintr(func() (int, error) {
		return unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	})
	if err != nil {
		return dirFD{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return dirFD{fd, path}, nil
}

// statIn checks that name (one path element) of directory dir exists as a
// regular file, not following a symbolic link.
func statIn(dir dirFD, name string) error {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstatat(dir.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return &os.PathError{Op: "fstatat", Path: filepath.Join(dir.Name(), name), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, filepath.Join(dir.Name(), name))
	}
	return nil
}

// linkIn hard-links name of directory from as newName of directory to
// (one path element each); an existing newName is fs.ErrExist.
func linkIn(from dirFD, name string, to dirFD, newName string) error {
	err := ignoringEINTR(func() error { return sysLinkat(from.fd, name, to.fd, newName) })
	if err != nil {
		return &os.LinkError{Op: "linkat", Old: filepath.Join(from.Name(), name), New: filepath.Join(to.Name(), newName), Err: err}
	}
	return nil
}

// renameInto renames name to base+suffix within directory dir, replacing
// it atomically.
func renameInto(dir dirFD, name, base, suffix string) error {
	err := ignoringEINTR(func() error { return sysRenameat(dir.fd, name, base, suffix) })
	if err != nil {
		return &os.LinkError{Op: "renameat", Old: filepath.Join(dir.Name(), name), New: filepath.Join(dir.Name(), base+suffix), Err: err}
	}
	return nil
}

// removeIn removes the file name of directory dir.
func removeIn(dir dirFD, name string) error {
	err := ignoringEINTR(func() error { return unix.Unlinkat(dir.fd, name, 0) })
	if err != nil {
		return &os.PathError{Op: "unlinkat", Path: filepath.Join(dir.Name(), name), Err: err}
	}
	return nil
}

// eintr calls fn again while a signal interrupts it.
func eintr[T any](fn func() (T, error)) (T, error) {
	for {
		v, err := fn()
		if err != unix.EINTR {
			return v, err
		}
	}
}

func ignoringEINTR(fn func() error) error {
	_, err := eintr(func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

// openat opens name in dir read-only, not following a symbolic link.
func openat(dir dirFD, name string) (int, error) { return openatParts(dir, name, "") }

// openatParts is openat of the name base+suffix.
func openatParts(dir dirFD, base, suffix string) (int, error) {
	fd, err := eintr(func() (int, error) {
		return sysOpenat(dir.fd, base, suffix, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW)
	})
	if err != nil {
		return -1, &os.PathError{Op: "openat", Path: filepath.Join(dir.Name(), base+suffix), Err: err}
	}
	return fd, nil
}

// readInIfExists is readIn, but a file that does not exist is nil data and
// no error, found without making one: a state file most versions lack.
func readInIfExists(dir dirFD, base, suffix string, limit int64, buf []byte) ([]byte, error) {
	fd, err := eintr(func() (int, error) {
		return sysOpenat(dir.fd, base, suffix, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW)
	})
	if err == unix.ENOENT {
		return nil, nil
	}
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: filepath.Join(dir.Name(), base+suffix), Err: err}
	}
	return readFD(fd, dir, base, suffix, limit, buf)
}

// readIn reads the regular file base+suffix of directory dir whole (at
// most limit bytes, else ErrTooLarge) into buf when it has the capacity:
// openat, fstat, read until the end, close, and nothing else.
func readIn(dir dirFD, base, suffix string, limit int64, buf []byte) ([]byte, error) {
	fd, err := openatParts(dir, base, suffix)
	if err != nil {
		return nil, err
	}
	return readFD(fd, dir, base, suffix, limit, buf)
}

// readFD is readIn of the file open as fd, which it closes.
func readFD(fd int, dir dirFD, base, suffix string, limit int64, buf []byte) ([]byte, error) {
	defer unix.Close(fd)
	name := func() string { return filepath.Join(dir.Name(), base+suffix) }
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: name(), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, name())
	}
	if st.Size > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, over %d", ErrTooLarge, name(), st.Size, limit)
	}
	// One byte more than the size: a file that grew is read to its end.
	if int64(cap(buf)) < st.Size+1 {
		buf = make([]byte, 0, st.Size+1)
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, fmt.Errorf("%w: %s grew over %d bytes", ErrTooLarge, name(), limit)
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: name(), Err: err}
		}
		if n == 0 {
			if int64(len(buf)) > limit {
				return nil, fmt.Errorf("%w: %s grew over %d bytes", ErrTooLarge, name(), limit)
			}
			return buf, nil
		}
		buf = buf[:len(buf)+n]
		if int64(len(buf)) == st.Size {
			// All fstat saw. A read for the end would only find whether
			// the file grew meanwhile, which a later reader could find
			// too: published files never change. (A short read alone
			// does not mean the end: FUSE file systems may return less.)
			return buf, nil
		}
	}
}
