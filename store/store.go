package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/modgate/modgate/internal/memo"
)

// A Version is one module version to publish, already built and verified by
// the caller. Publish checks it again before anything becomes visible.
type Version struct {
	Module  module.Version    // canonical semver; refused otherwise
	Info    []byte            // exact .info JSON; its "Version" must equal Module.Version
	Mod     []byte            // exact go.mod; must declare Module.Path and match the zip's go.mod
	ZipFile string            // module zip on local disk; the store copies it
	ZipHash string            // "h1:" hash of that zip (dirhash.HashZip with dirhash.Hash1)
	Docs    map[string][]byte // extra documents by suffix; see IsDoc

	// Record, when set, runs after every file of the version but .info is
	// durable, and before .info makes the version published: modgate
	// appends the version's go.sum records to its checksum log here, so
	// that a version that can be served always has its log record. It
	// runs on every Publish of the version, also when the version was
	// already published, so it must be idempotent. Its error stops the
	// publish before .info; the version then stays unpublished until a
	// later Publish succeeds (and its record, if it was appended, binds
	// that Publish to the same content).
	Record func(ctx context.Context) error `json:"-"`
}

// Published describes a published version.
type Published struct {
	ZipHash string // "h1:" hash of the .zip, the go.sum line for the module
	ModHash string // "h1:" hash of the .mod, the go.sum "/go.mod" line
	Info    []byte // the .info JSON
}

// Size bounds. Files beyond them are refused when publishing and reported as
// ErrCorrupt when reading, so a damaged or hostile store cannot make a
// reader allocate without limit.
const (
	maxInfo = 1 << 20
	maxDoc  = 64 << 20
	maxList = 16 << 20
	maxHash = 256
)

// lockName is the flock file. Module path elements cannot start with a dot,
// so no module can collide with it; the same holds for tmpPrefix.
const (
	lockName  = ".modgate.lock"
	tmpPrefix = ".tmp-"
)

// A Dir is a proxy store rooted at a directory.
type Dir struct {
	root string
	// places are where the files of versions checked before live (place).
	places *memo.Map[module.Version, location]
	// sem admits one publisher of this Dir at a time, with a context; the
	// flock then excludes other Dirs and other processes.
	sem chan struct{}
	// testHookAfter, when set, runs after each publish step and stops the
	// publish with its error, as a crash there would.
	testHookAfter func(step string) error
}

// Open returns the store rooted at root, creating the directory if needed.
func Open(root string) (*Dir, error) {
	if root == "" {
		return nil, errors.New("store: empty root")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("store: %s is not a directory", abs)
	}
	return &Dir{root: abs, sem: make(chan struct{}, 1), places: &memo.Map[module.Version, location]{Max: maxPlaces}}, nil
}

// place checks m (checkModule) and returns where its files live,
// remembered for versions checked before: a re-verification run asks for
// every version of the store, a server for the same ones again and again.
func (d *Dir) place(m module.Version) (location, error) {
	if loc, ok := d.places.Get(m); ok {
		return loc, nil
	}
	if err := checkModule(m); err != nil {
		return location{}, err
	}
	loc, err := d.locate(m)
	if err != nil {
		return location{}, versionError(m, err)
	}
	d.places.Add(m, loc)
	return loc, nil
}

// Root returns the absolute path of the store's root directory.
func (d *Dir) Root() string { return d.root }

// Lookup returns the hashes and info of a published version. If the version
// is not published, the error satisfies errors.Is(err, fs.ErrNotExist).
func (d *Dir) Lookup(ctx context.Context, m module.Version) (*Published, error) {
	loc, err := d.place(m)
	if err != nil {
		return nil, err
	}
	p, err := loc.lookup()
	if err != nil {
		return nil, versionError(m, err)
	}
	return p, nil
}

// OpenFile opens one file of a published version for reading. suffix is
// ".info", ".mod", ".zip", ".ziphash", a document suffix (IsDoc) or a state
// suffix (IsState). If the
// version is not published, or has no such document, the error satisfies
// errors.Is(err, fs.ErrNotExist): files left by an interrupted publish are
// never handed out. A published version lacking .mod, .zip or .ziphash is
// ErrCorrupt.
func (d *Dir) OpenFile(ctx context.Context, m module.Version, suffix string) (*os.File, error) {
	if !isFileSuffix(suffix) {
		return nil, invalid(m, "unknown file suffix %q", suffix)
	}
	loc, err := d.place(m)
	if err != nil {
		return nil, err
	}
	if suffix != suffixInfo {
		if _, err := os.Lstat(loc.file(suffixInfo)); err != nil {
			return nil, versionError(m, err)
		}
	}
	f, err := os.Open(loc.file(suffix))
	return checkOpened(m, suffix, f, err)
}

// checkOpened finishes opening a version's file: f must be a regular file,
// and a missing file every version has is corruption, not absence.
func checkOpened(m module.Version, suffix string, f *os.File, err error) (*os.File, error) {
	if err != nil {
		return nil, openError(m, suffix, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, f.Name())
	}
	if err != nil {
		f.Close()
		return nil, versionError(m, err)
	}
	return f, nil
}

// openError is the error of opening a version's file.
func openError(m module.Version, suffix string, err error) error {
	if suffix != suffixInfo && !IsDoc(suffix) && !IsState(suffix) && errors.Is(err, fs.ErrNotExist) {
		// Every published version has these; "not found" would be a lie.
		err = fmt.Errorf("%w: published version: %v", ErrCorrupt, err)
	}
	return versionError(m, err)
}

// ReadFile reads one file of published version m whole (Files.ReadFile).
func (d *Dir) ReadFile(ctx context.Context, m module.Version, suffix string, limit int64, buf []byte) ([]byte, error) {
	files, err := d.OpenVersion(ctx, m)
	if err != nil {
		return nil, err
	}
	defer files.Close()
	return files.ReadFile(suffix, limit, buf)
}

// Files are the files of one published version, opened relative to its
// directory: for readers of many files of a version (re-verification),
// which OpenFile would each look up from the store's root.
type Files struct {
	m    module.Version
	dir  dirFD // the version's @v directory
	base string
}

// OpenVersion returns the files of published version m; the error is
// fs.ErrNotExist when m is not published. Close the Files after use.
func (d *Dir) OpenVersion(ctx context.Context, m module.Version) (*Files, error) {
	f, err := d.versionDir(m)
	if err != nil {
		return nil, err
	}
	// Published means it has its .info (written last).
	if err := statIn(f.dir, f.base+suffixInfo); err != nil {
		f.Close()
		return nil, versionError(m, err)
	}
	return f, nil
}

// ReadVersion is OpenVersion and Files.ReadFile(".info", …, buf) in one:
// reading .info is what proves the version published, so a reader of
// every file (re-verification) makes one system call fewer.
func (d *Dir) ReadVersion(ctx context.Context, m module.Version, buf []byte) (*Files, []byte, error) {
	f, err := d.versionDir(m)
	if err != nil {
		return nil, nil, err
	}
	info, err := readIn(f.dir, f.base, suffixInfo, maxInfo, buf)
	if err != nil {
		f.Close()
		return nil, nil, versionError(m, err)
	}
	return f, info, nil
}

// versionDir opens the directory of m's files, published or not.
func (d *Dir) versionDir(m module.Version) (*Files, error) {
	loc, err := d.place(m)
	if err != nil {
		return nil, err
	}
	dir, err := openDir(loc.dir)
	if err != nil {
		return nil, versionError(m, err)
	}
	return &Files{m: m, dir: dir, base: loc.base}, nil
}

// Quarantined returns the version's quarantine, or nil when it is not
// quarantined: what Dir.Quarantined says, read through the directory handle.
func (f *Files) Quarantined() (*Quarantine, error) {
	data, err := readInIfExists(f.dir, f.base, StateQuarantine, maxState, nil)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil // removed since it was found
	case err != nil:
		return nil, versionError(f.m, err)
	case data == nil:
		return nil, nil
	}
	return parseQuarantine(data), nil
}

// Open opens one file of the version, as OpenFile does.
func (f *Files) Open(suffix string) (*os.File, error) {
	if !isFileSuffix(suffix) {
		return nil, invalid(f.m, "unknown file suffix %q", suffix)
	}
	file, err := openIn(f.dir, f.base+suffix)
	return checkOpened(f.m, suffix, file, err)
}

// ReadFile reads one file of the version whole, into buf when it has the
// capacity. A file larger than limit is an error wrapping ErrTooLarge.
// For the small files of many versions it is cheaper than Open: no
// *os.File is made for it.
func (f *Files) ReadFile(suffix string, limit int64, buf []byte) ([]byte, error) {
	if !isFileSuffix(suffix) {
		return nil, invalid(f.m, "unknown file suffix %q", suffix)
	}
	data, err := readIn(f.dir, f.base, suffix, limit, buf)
	if err != nil {
		return nil, openError(f.m, suffix, err)
	}
	return data, nil
}

// ErrTooLarge is a file larger than its reader's limit.
var ErrTooLarge = errors.New("file too large")

// Close releases the version's directory.
func (f *Files) Close() error { return f.dir.Close() }

// Versions returns the versions in path's @v/list, in semver order, less
// the quarantined ones: what the proxy lists. If the module has no list, the
// error satisfies errors.Is(err, fs.ErrNotExist). The list file itself is
// never rewritten by a quarantine, so a restore needs no rewrite either.
func (d *Dir) Versions(ctx context.Context, path string) ([]string, error) {
	vs, q, err := d.listed(path)
	if err != nil || len(q) == 0 {
		return vs, err
	}
	kept := vs[:0]
	for _, v := range vs {
		if !q[v] {
			kept = append(kept, v)
		}
	}
	return kept, nil
}

// QuarantinedVersions returns the versions in path's @v/list that are
// quarantined, in semver order: what Versions leaves out.
func (d *Dir) QuarantinedVersions(ctx context.Context, path string) ([]string, error) {
	vs, q, err := d.listed(path)
	if err != nil || len(q) == 0 {
		return nil, err
	}
	var out []string
	for _, v := range vs {
		if q[v] {
			out = append(out, v)
		}
	}
	return out, nil
}

// listed reads path's @v/list, in semver order, and which of its versions
// are quarantined.
func (d *Dir) listed(path string) ([]string, map[string]bool, error) {
	if err := module.CheckPath(path); err != nil {
		return nil, nil, &module.ModuleError{Path: path, Err: fmt.Errorf("%w: %w", ErrInvalid, err)}
	}
	dir, err := d.moduleDir(path)
	if err != nil {
		return nil, nil, &module.ModuleError{Path: path, Err: err}
	}
	vs, err := readList(filepath.Join(dir, "list"), path)
	if err != nil {
		return nil, nil, &module.ModuleError{Path: path, Err: err}
	}
	q, err := quarantinedIn(dir, vs)
	if err != nil {
		return nil, nil, &module.ModuleError{Path: path, Err: err}
	}
	return vs, q, nil
}

// lookup reads the published version at loc. Only a missing .info means
// "not published"; any other missing file is corruption.
func (loc location) lookup() (*Published, error) {
	info, err := readFile(loc.file(suffixInfo), maxInfo)
	if err != nil {
		return nil, err
	}
	zh, err := readFile(loc.file(suffixZipHash), maxHash)
	if err != nil {
		return nil, fmt.Errorf("%w: published version: %v", ErrCorrupt, err)
	}
	mod, err := readFile(loc.file(suffixMod), modzip.MaxGoMod)
	if err != nil {
		return nil, fmt.Errorf("%w: published version: %v", ErrCorrupt, err)
	}
	mh, err := modHash(mod)
	if err != nil {
		return nil, err
	}
	return &Published{ZipHash: string(bytes.TrimRight(zh, "\r\n ")), ModHash: mh, Info: info}, nil
}

// readFile reads at most limit bytes of name; a longer file is ErrCorrupt.
func readFile(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorrupt, name, limit)
	}
	return data, nil
}

// exists reports whether name exists; errors other than "does not exist"
// are returned, so that an unreadable store is not mistaken for an empty one.
func exists(name string) (bool, error) {
	_, err := os.Lstat(name)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}
