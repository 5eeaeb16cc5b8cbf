package store

import (
	"context"
	"path/filepath"
)

// lock makes the caller the only publisher into d's root, in this process
// and across processes, until unlock is called.
func (d *Dir) lock(ctx context.Context) (unlock func(), err error) {
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	f, err := flock(ctx, filepath.Join(d.root, lockName))
	if err != nil {
		<-d.sem
		return nil, err
	}
	return func() {
		f.Close()
		<-d.sem
	}, nil
}
