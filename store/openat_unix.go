//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package store

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openIn opens the file name (one path element) of directory dir for
// reading, never following a symbolic link. openat and os.NewFile: a file
// the runtime does not try to register with its poller, which os.Open and
// os.Root do for every file (four fcntl and an epoll_ctl that fails for
// regular files; a third of the system calls of reading a small file).
func openIn(dir *os.File, name string) (*os.File, error) {
	fd, err := openat(dir, name)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name)), nil
}

// openDir opens the directory path, not following a symbolic link as its
// last element, without registering it with the runtime's poller.
func openDir(path string) (*os.File, error) {
	fd, err := eintr(func() (int, error) {
		return unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// statIn checks that name (one path element) of directory dir exists as a
// regular file, not following a symbolic link.
func statIn(dir *os.File, name string) error {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return &os.PathError{Op: "fstatat", Path: filepath.Join(dir.Name(), name), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, filepath.Join(dir.Name(), name))
	}
	return nil
}

// linkIn hard-links name of directory from as newName of directory to
// (one path element each); an existing newName is fs.ErrExist.
func linkIn(from *os.File, name string, to *os.File, newName string) error {
	err := ignoringEINTR(func() error { return unix.Linkat(int(from.Fd()), name, int(to.Fd()), newName, 0) })
	if err != nil {
		return &os.LinkError{Op: "linkat", Old: filepath.Join(from.Name(), name), New: filepath.Join(to.Name(), newName), Err: err}
	}
	return nil
}

// renameIn renames name to newName within directory dir, replacing
// newName atomically.
func renameIn(dir *os.File, name, newName string) error {
	err := ignoringEINTR(func() error { return unix.Renameat(int(dir.Fd()), name, int(dir.Fd()), newName) })
	if err != nil {
		return &os.LinkError{Op: "renameat", Old: filepath.Join(dir.Name(), name), New: filepath.Join(dir.Name(), newName), Err: err}
	}
	return nil
}

// removeIn removes the file name of directory dir.
func removeIn(dir *os.File, name string) error {
	err := ignoringEINTR(func() error { return unix.Unlinkat(int(dir.Fd()), name, 0) })
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
func openat(dir *os.File, name string) (int, error) {
	fd, err := eintr(func() (int, error) {
		return unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	})
	if err != nil {
		return -1, &os.PathError{Op: "openat", Path: filepath.Join(dir.Name(), name), Err: err}
	}
	return fd, nil
}

// readIn reads the regular file name of directory dir whole (at most limit
// bytes, else ErrTooLarge) into buf when it has the capacity: openat,
// fstat, read until the end, close, and nothing else.
func readIn(dir *os.File, name string, limit int64, buf []byte) ([]byte, error) {
	fd, err := openat(dir, name)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: filepath.Join(dir.Name(), name), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, filepath.Join(dir.Name(), name))
	}
	if st.Size > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, over %d", ErrTooLarge, filepath.Join(dir.Name(), name), st.Size, limit)
	}
	// One byte more than the size: a file that grew is read to its end.
	if int64(cap(buf)) < st.Size+1 {
		buf = make([]byte, 0, st.Size+1)
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, fmt.Errorf("%w: %s grew over %d bytes", ErrTooLarge, filepath.Join(dir.Name(), name), limit)
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: filepath.Join(dir.Name(), name), Err: err}
		}
		if n == 0 {
			if int64(len(buf)) > limit {
				return nil, fmt.Errorf("%w: %s grew over %d bytes", ErrTooLarge, filepath.Join(dir.Name(), name), limit)
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
