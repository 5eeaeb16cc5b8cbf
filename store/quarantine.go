package store

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/sync/errgroup"
)

// State files: the only files of a version that change after it is
// published. They say what modgate currently thinks of the version; the
// published files themselves are never touched.
const (
	// StateQuarantine marks a quarantined version: it is left out of
	// Versions (so of @v/list and @latest), and servers answer its files
	// with 403 and the reason. Its content is a Quarantine in JSON.
	StateQuarantine = ".quarantine"
	// StateReverified is the latest signed verification summary of a
	// re-verification that passed (a DSSE envelope, one line). It is
	// replaced by every later run, and regenerated when lost.
	StateReverified = ".reverified.jsonl"
)

var stateSuffixes = []string{StateQuarantine, StateReverified}

// IsState reports whether suffix names a state file.
func IsState(suffix string) bool {
	for _, s := range stateSuffixes {
		if s == suffix {
			return true
		}
	}
	return false
}

// maxState bounds a state file when reading it.
const maxState = 16 << 20

// Quarantine says why a version was quarantined.
type Quarantine struct {
	// Reason is one line for a person; the proxy answers it with the 403.
	Reason string `json:"reason"`
	// Findings are every check that failed, one line each.
	Findings []string  `json:"findings,omitempty"`
	Time     time.Time `json:"time"`
	// Run and EventID name the re-verification that quarantined it.
	Run     string `json:"run,omitempty"`
	EventID string `json:"event_id,omitempty"`
}

// Quarantined returns the quarantine of a published version, or nil when it
// is not quarantined. An unpublished version is fs.ErrNotExist.
func (d *Dir) Quarantined(ctx context.Context, m module.Version) (*Quarantine, error) {
	loc, err := d.published(m)
	if err != nil {
		return nil, err
	}
	return readQuarantine(loc)
}

func readQuarantine(loc location) (*Quarantine, error) {
	data, err := readFile(loc.file(StateQuarantine), maxState)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseQuarantine(data), nil
}

func parseQuarantine(data []byte) *Quarantine {
	q := new(Quarantine)
	if err := json.Unmarshal(data, q); err != nil || q.Reason == "" {
		// A marker that does not parse still quarantines: deny by default.
		return &Quarantine{Reason: "quarantine record unreadable; re-verify the version"}
	}
	return q
}

// SetQuarantine quarantines a published version, or replaces the reason of
// one already quarantined. Nothing of the version is removed or changed.
func (d *Dir) SetQuarantine(ctx context.Context, m module.Version, q Quarantine) error {
	if q.Reason == "" {
		return invalid(m, "quarantine without a reason")
	}
	data, err := json.Marshal(q)
	if err != nil {
		return err
	}
	return d.setState(ctx, m, StateQuarantine, data, true)
}

// ClearQuarantine lifts the quarantine of m, if any, and reports whether
// there was one.
func (d *Dir) ClearQuarantine(ctx context.Context, m module.Version) (bool, error) {
	loc, err := d.published(m)
	if err != nil {
		return false, err
	}
	unlock, err := d.lock(ctx)
	if err != nil {
		return false, err
	}
	defer unlock()
	err = os.Remove(loc.file(StateQuarantine))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, versionError(m, err)
	}
	return true, syncDir(loc.dir)
}

// WriteReverified replaces the latest re-verification summary of m. The
// file is not synced: a summary lost in a crash is made again by the next
// run, and a night of re-verification should not cost a sync per version.
func (d *Dir) WriteReverified(ctx context.Context, m module.Version, envelope []byte) error {
	return d.setState(ctx, m, StateReverified, envelope, false)
}

// WriteReverifiedBatch makes envelope the latest re-verification summary of
// every version in ms (a statement with all of them as subjects): the
// content is written once and hard-linked into place per version. Not
// synced, as WriteReverified. The versions must be published (the caller
// has just read them): they are not looked up again, since a published
// version never stops being one, and a state file beside a version that
// is not published would never be served (OpenFile looks for .info).
func (d *Dir) WriteReverifiedBatch(ctx context.Context, ms []module.Version, envelope []byte) error {
	shared := filepath.Join(d.root, tmpPrefix+"reverified")
	if err := os.MkdirAll(shared, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(shared, "batch-*")
	if err != nil {
		return err
	}
	src := f.Name()
	defer os.Remove(src)
	_, err = f.Write(envelope)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	dir, err := openDir(shared)
	if err != nil {
		return err
	}
	defer dir.Close()
	name := filepath.Base(src)
	// The versions of one module share a directory, opened once; links
	// and renames are made relative to it. They are metadata operations
	// the kernel runs in parallel: a few modules at a time keep a large
	// batch from being the tail of a run.
	byPath := make(map[string][]module.Version)
	var paths []string
	for _, m := range ms {
		if byPath[m.Path] == nil {
			paths = append(paths, m.Path)
		}
		byPath[m.Path] = append(byPath[m.Path], m)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, path := range paths {
		g.Go(func() error { return d.linkReverified(gctx, byPath[path], dir, name) })
	}
	return g.Wait()
}

// linkReverified links the batch file name of directory batch into place
// as the StateReverified of every version in vs, all of one module.
func (d *Dir) linkReverified(ctx context.Context, vs []module.Version, batch dirFD, name string) error {
	locs := make([]location, len(vs))
	for i, m := range vs {
		loc, err := d.place(m)
		if err != nil {
			return err
		}
		locs[i] = loc
	}
	dir, err := openDir(locs[0].dir)
	if err != nil {
		return versionError(vs[0], err)
	}
	defer dir.Close()
	for i, m := range vs {
		if err := ctx.Err(); err != nil {
			return err
		}
		// The temporary name is unique to this batch file; one left by a
		// crash with the same name can only be an earlier attempt.
		base := locs[i].base
		tmp := tmpPrefix + name + "-" + base
		err = linkIn(batch, name, dir, tmp)
		if errors.Is(err, fs.ErrExist) {
			removeIn(dir, tmp)
			err = linkIn(batch, name, dir, tmp)
		}
		if err != nil {
			return versionError(m, err)
		}
		if err := renameInto(dir, tmp, base, StateReverified); err != nil {
			removeIn(dir, tmp)
			return versionError(m, err)
		}
	}
	return nil
}

// setState writes a state file of a published version atomically.
func (d *Dir) setState(ctx context.Context, m module.Version, suffix string, data []byte, durable bool) error {
	loc, err := d.published(m)
	if err != nil {
		return err
	}
	if !durable {
		// Rename of a fully written temporary file: readers see the old or
		// the new content, never a mix; no lock needed, the last one wins.
		if err := writeFast(loc.dir, loc.base+suffix, data); err != nil {
			return versionError(m, err)
		}
		return nil
	}
	unlock, err := d.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := replace(loc.dir, loc.base+suffix, data); err != nil {
		return versionError(m, err)
	}
	return nil
}

// published checks m and returns its location if it is published.
func (d *Dir) published(m module.Version) (location, error) {
	loc, err := d.place(m)
	if err != nil {
		return location{}, err
	}
	if _, err := os.Lstat(loc.file(suffixInfo)); err != nil {
		return location{}, versionError(m, err)
	}
	return loc, nil
}

// quarantinedIn returns the versions among vs (of the module whose @v
// directory is dir) that have a quarantine marker.
func quarantinedIn(dir string, vs []string) (map[string]bool, error) {
	var q map[string]bool
	for _, v := range vs {
		ev, err := module.EscapeVersion(v)
		if err != nil {
			continue // readList kept only valid versions
		}
		ok, err := exists(filepath.Join(dir, ev+StateQuarantine))
		if err != nil {
			return nil, err
		}
		if ok {
			if q == nil {
				q = make(map[string]bool)
			}
			q[v] = true
		}
	}
	return q, nil
}
