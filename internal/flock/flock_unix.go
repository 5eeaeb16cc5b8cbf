//go:build unix

// Package flock takes exclusive advisory locks on files, between
// processes.
package flock

import (
	"errors"
	"os"
	"syscall"
)

// Lock takes an exclusive flock on the file at path (created if needed),
// waiting for it; the kernel releases it if the process dies. unlock
// releases it.
func Lock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
