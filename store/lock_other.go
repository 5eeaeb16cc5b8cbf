//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package store

import (
	"context"
	"errors"
	"os"
	"runtime"
)

// flock is not implemented here: publishing without a cross-process lock
// could lose list entries, so the store refuses to publish instead.
func flock(ctx context.Context, name string) (*os.File, error) {
	return nil, errors.New("store: no file locking on " + runtime.GOOS)
}
