package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// link creates the file final in dir with the content that fill writes. The
// content is written to a temporary file and synced before final exists, so
// final never names a partial file; os.Link fails rather than replace an
// existing final, so no published file is ever overwritten.
func link(dir, final string, fill func(*os.File) error) error {
	return writeTemp(dir, fill, func(tmp string) error { return os.Link(tmp, final) })
}

// linkBytes is link for content in memory.
func linkBytes(dir, final string, data []byte) error {
	return link(dir, final, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// replace atomically replaces dir/name with data. Only the list is ever
// replaced: it is the one file that changes after it is written.
func replace(dir, name string, data []byte) error {
	return writeTemp(dir, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	}, func(tmp string) error { return os.Rename(tmp, filepath.Join(dir, name)) })
}

// writeFast atomically replaces dir/name with data, without syncing: for
// state that is regenerated when lost.
func writeFast(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// writeTemp writes a temporary file in dir with fill, makes it readable and
// durable, hands it to publish (which links or renames it into place), and
// syncs dir. The temporary name never survives, whatever fails.
func writeTemp(dir string, fill func(*os.File) error, publish func(tmp string) error) error {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after a rename; after a link the content lives on as final
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	// CreateTemp makes 0600 files; whatever serves the store must read them.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := publish(tmp); err != nil {
		return err
	}
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(dir)
}

// syncDir makes the directory entries in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// mkdirAll creates dir and any missing parents below root, syncing each
// parent so that a new directory survives a crash along with its files.
func mkdirAll(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return err
	}
	p := root
	for _, elem := range strings.Split(rel, string(filepath.Separator)) {
		parent := p
		p = filepath.Join(p, elem)
		err := os.Mkdir(p, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := syncDir(parent); err != nil {
			return err
		}
	}
	return nil
}

// removeLeftovers removes what an interrupted publish of the version at loc
// left behind, and temporary files of any interrupted publish in loc.dir.
// The caller holds the lock and has seen that the version has no .info, so
// none of this was ever visible; a file kept here could otherwise become
// part of the next publish of the version without being offered by it.
func removeLeftovers(loc location) error {
	removed := false
	for _, s := range allSuffixes() {
		err := os.Remove(loc.file(s))
		switch {
		case err == nil:
			removed = true
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	entries, err := os.ReadDir(loc.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.Remove(filepath.Join(loc.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed = true
		}
	}
	if removed {
		return syncDir(loc.dir)
	}
	return nil
}
