package depsum

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/mod/sumdb"

	"github.com/modgate/modgate/internal/flock"
)

// cacheDir stores what sumdb.Client asks ClientOps to keep: configuration
// ("<name>/latest", the last verified signed tree head) and cache files
// ("<name>/lookup/…", "<name>/tile/…"), under one directory.
//
// Every file is written to a temporary name, synced and renamed, so a crash
// never leaves a torn file: a torn tile would read as a server that fails
// verification. The latest tree head is replaced by compare-and-swap under
// a lock that also holds between processes (flock, on unix).
type cacheDir struct {
	root string
	mu   sync.Mutex // serializes writeConfig within the process
}

// path maps a sumdb file name to a path inside root, refusing names that
// would leave it (a database name is chosen by whoever wrote the key).
func (d *cacheDir) path(file string) (string, error) {
	p := filepath.FromSlash(file)
	if !filepath.IsLocal(p) {
		return "", fmt.Errorf("sumdb cache: refusing file name %q", file)
	}
	return filepath.Join(d.root, p), nil
}

// readConfig returns the named configuration file, or nothing (the empty
// tree) if it does not exist yet.
func (d *cacheDir) readConfig(file string) ([]byte, error) {
	p, err := d.path(file)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// writeConfig replaces old by new, or returns sumdb.ErrWriteConflict if the
// file no longer holds old.
func (d *cacheDir) writeConfig(file string, old, new []byte) error {
	p, err := d.path(file)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	unlock, err := flock.Lock(p + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if !bytes.Equal(cur, old) {
		return sumdb.ErrWriteConflict
	}
	if err := writeFileAtomic(p, new, true); err != nil {
		return err
	}
	return syncDir(filepath.Dir(p))
}

func (d *cacheDir) readCache(file string) ([]byte, error) {
	p, err := d.path(file)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err == nil && len(data) == 0 {
		// Cache files are written without a sync (as the go command
		// writes its own): what a crash can leave is an empty file, which
		// is a miss, not a tile or record that fails verification.
		return nil, fmt.Errorf("%s: empty cache file", file)
	}
	return data, err
}

// writeCache replaces a cache file atomically but without a sync: a lost
// cache file is downloaded again, and everything in it is verified on use.
func (d *cacheDir) writeCache(file string, data []byte) error {
	p, err := d.path(file)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(p, data, false)
}

// writeFileAtomic writes data to a temporary file beside p, syncs it when
// asked, and renames it to p.
func writeFileAtomic(p string, data []byte, sync bool) (err error) {
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	return nil
}
