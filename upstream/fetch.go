package upstream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	modzip "golang.org/x/mod/zip"
)

// Fetcher fetches module versions from the upstream proxies and proves them
// against the checksum database. It is safe for concurrent use: concurrent
// Fetch calls for the same version share one download.
type Fetcher struct {
	opts    Options
	proxies []proxy

	mu      sync.Mutex
	flights map[module.Version]*flight
}

// New returns a Fetcher for o (after o.WithDefaults()).
func New(o Options) (*Fetcher, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	proxies, _ := parseGOPROXY(o.GOPROXY) // Validate parsed it
	return &Fetcher{opts: o, proxies: proxies, flights: make(map[module.Version]*flight)}, nil
}

// Module is a fetched and proven module version.
type Module struct {
	Version module.Version
	// Info is the .info document as the proxy served it, validated.
	Info Info
	// GoMod is the .mod file: proven by the checksum database, and equal to
	// the go.mod in the zip (or, for a module without one, to the file the
	// go command synthesizes, "module PATH\n").
	GoMod []byte
	// ZipPath is the module zip, in Options.TempDir: proven, and checked
	// with zip.CheckZip. The file is the caller's own: remove it (Remove)
	// when done.
	ZipPath string
	// ZipHash and ModHash are the go.sum hashes of the zip and the .mod
	// file ("h1:…"), equal to the checksum database's.
	ZipHash, ModHash string
	// DBLines are the go.sum lines the checksum database holds for the
	// version.
	DBLines []string
	// Proxy is the proxy that served the zip, credentials redacted.
	Proxy string
}

// Remove removes the zip file.
func (m *Module) Remove() error { return os.Remove(m.ZipPath) }

// Fetch downloads m's .info, .mod and .zip from the upstream proxies, checks
// them, and proves the .mod and the .zip against the checksum database.
//
// m must be a valid module path and a canonical version ("v1.2.3",
// "v2.0.0+incompatible", a pseudo-version), else Fetch fails with
// [ErrInvalid] before any request. Concurrent calls for the same version
// share one download; each caller gets its own zip file. A caller whose ctx
// ends stops waiting; the download stops when no caller waits for it.
func (f *Fetcher) Fetch(ctx context.Context, m module.Version) (*Module, error) {
	if err := checkVersion(m); err != nil {
		return nil, &Error{Module: m, Check: "version", Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, &Error{Module: m, Check: "version", Err: err}
	}
	c := f.join(ctx, m)
	select {
	case <-c.done:
	case <-ctx.Done():
		f.leave(c)
		return nil, &Error{Module: m, Check: c.stage(), Err: ctx.Err()}
	}
	mod, err := c.claim()
	f.leave(c)
	return mod, err
}

// checkVersion vets a requested module version: the path and version are
// hostile input, and only a canonical version names one file for good.
func checkVersion(m module.Version) error {
	if err := module.CheckPath(m.Path); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if c := module.CanonicalVersion(m.Version); c != m.Version {
		if c == "" {
			return fmt.Errorf("%w: %q is not a semantic version (Fetch needs an exact version; Latest resolves one)", ErrInvalid, m.Version)
		}
		return fmt.Errorf("%w: version %q is not canonical (it would be %q)", ErrInvalid, m.Version, c)
	}
	if err := checkPathVersion(m.Path, m.Version); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// checkPathVersion is module.Check plus the go command's rules for
// +incompatible, which module.Check does not enforce: only for v2 and above,
// and only for a path without a major version suffix.
func checkPathVersion(path, vers string) error {
	if err := module.Check(path, vers); err != nil {
		var me *module.ModuleError
		if errors.As(err, &me) {
			err = me.Err // Error already names the module and version
		}
		return err
	}
	if semver.Build(vers) == "+incompatible" {
		if _, major, _ := module.SplitPathVersion(path); major != "" {
			return fmt.Errorf("version %q: +incompatible is not allowed: the path has a major version suffix", vers)
		}
		if m := semver.Major(vers); m == "v0" || m == "v1" {
			return fmt.Errorf("version %q: +incompatible is not allowed: %s is compatible", vers, m)
		}
	}
	return nil
}

// fetch does the work of one flight.
func (f *Fetcher) fetch(ctx context.Context, c *flight) (_ *Module, err error) {
	m := c.key
	fail := func(check string, err error) (*Module, error) {
		return nil, &Error{Module: m, Check: check, Err: err}
	}
	escPath, err := module.EscapePath(m.Path)
	if err != nil {
		return fail("version", fmt.Errorf("%w: %v", ErrInvalid, err))
	}
	escVers, err := module.EscapeVersion(m.Version)
	if err != nil {
		return fail("version", fmt.Errorf("%w: %v", ErrInvalid, err))
	}
	base := escPath + "/@v/" + escVers

	// .info: the go command requires exactly the version asked for.
	var info Info
	var infoBuf bufSink
	_, err = f.download(ctx, base+".info", f.opts.MaxInfoSize, &infoBuf, func() error {
		i, err := parseInfo(infoBuf.Bytes())
		if err != nil {
			return err
		}
		if i.Version != m.Version {
			return fmt.Errorf("%w: it is for version %q, not %q", ErrBadInfo, i.Version, m.Version)
		}
		info = i
		return nil
	})
	if err != nil {
		return fail("info", err)
	}

	c.setStage("mod")
	var modBuf bufSink
	modProxy, err := f.download(ctx, base+".mod", f.opts.MaxModSize, &modBuf, nil)
	if err != nil {
		return fail("mod", err)
	}
	gomod := modBuf.Bytes()

	// Ask the checksum database while the zip downloads; a database that
	// fails stops the download.
	c.setStage("zip")
	zctx, stopZip := context.WithCancel(ctx)
	defer stopZip()
	type answer struct {
		lines []string
		err   error
	}
	db := make(chan answer, 1)
	go func() {
		lines, err := f.opts.DB.Lookup(ctx, m)
		if err != nil {
			stopZip()
		}
		db <- answer{lines, err}
	}()
	zipPath, zipProxy, zipErr := f.downloadZip(zctx, base+".zip")
	defer func() {
		if err != nil && zipPath != "" {
			os.Remove(zipPath)
		}
	}()
	a := <-db
	if a.err != nil {
		return fail("checksum-db", f.dbError(a.err))
	}

	// The proofs come first, so that tampering is reported as such even
	// when the tampered file is also malformed.
	c.setStage("checksum-db")
	modHash, err := hashGoMod(gomod)
	if err != nil {
		return fail("mod", err)
	}
	if err := f.compare(m, "go.mod", modHash, modProxy, a.lines); err != nil {
		return fail("checksum-db", err)
	}
	if zipErr != nil {
		return fail("zip", zipErr)
	}
	zipHash, err := hashZip(zipPath)
	if err != nil {
		return fail("zip", err)
	}
	if err := f.compare(m, "zip", zipHash, zipProxy, a.lines); err != nil {
		return fail("checksum-db", err)
	}

	c.setStage("zip")
	if _, err := modzip.CheckZip(m, zipPath); err != nil {
		return fail("zip", fmt.Errorf("%w: %v", ErrBadZip, err))
	}
	if err := checkGoMod(m, gomod, zipPath); err != nil {
		return fail("mod", err)
	}
	return &Module{
		Version: m,
		Info:    info,
		GoMod:   gomod,
		ZipPath: zipPath,
		ZipHash: zipHash,
		ModHash: modHash,
		DBLines: a.lines,
		Proxy:   zipProxy.shown,
	}, nil
}

// downloadZip downloads a zip into a new file in TempDir. The file is
// returned even with an error, for the caller to remove.
func (f *Fetcher) downloadZip(ctx context.Context, rel string) (string, *proxy, error) {
	tmp, err := os.CreateTemp(f.opts.TempDir, "upstream-*.zip")
	if err != nil {
		return "", nil, &localError{err}
	}
	p, err := f.download(ctx, rel, f.opts.MaxZipSize, fileSink{tmp}, nil)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = &localError{cerr}
	}
	return tmp.Name(), p, err
}
