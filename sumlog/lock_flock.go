//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sumlog

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on name without waiting: a log has one
// owner, and a second one should fail at once rather than queue behind a
// server that runs for weeks. flock locks belong to the open file, so a
// second Open in the same process is refused too; the kernel releases the
// lock when its owner dies, so a crash never leaves the directory locked.
func lockFile(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked by another process, or by another Log of this one", ErrLocked, name)
		}
		return nil, &os.PathError{Op: "flock", Path: name, Err: err}
	}
	return f, nil
}
