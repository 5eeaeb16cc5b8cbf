package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/modgate/modgate/config"
	"github.com/modgate/modgate/upstream"
)

// Public modules enter through the same gate as private ones, from the
// upstream proxy instead of a repository: the stages are
//
//	upstream       download .info, .mod and .zip, CheckZip, hash, and prove
//	               both hashes against the public checksum database
//	immutability   the checksum log and the store agree, or nothing was there
//	dependencies   the module's go.mod and go.sum, as for a private module
//	sbom, policy, sign, publish
//
// There is no tag and no signer: the public checksum database is the
// authority on what the version's bytes are.

// ErrPrivatePath refuses an upstream admission of a private module path:
// private modules come from their repositories, and asking the public
// proxy about them would leak their names.
var ErrPrivatePath = errors.New("private module path: admitted from its repository only, never from a proxy")

// publicStages are the stages of an upstream admission.
func (p *Pipeline) publicStages() []Stage {
	return []Stage{
		{Name: "upstream", Run: p.fetchPublic},
		{Name: "immutability", Run: p.checkImmutable},
		{Name: "dependencies", Run: p.checkDependencies, Independent: true},
		{Name: "sbom", Run: p.buildSBOM},
		{Name: "policy", Run: p.evaluatePolicy, Independent: true},
		{Name: "sign", Run: p.sign, Effect: true},
		{Name: "publish", Run: p.publish, Effect: true},
	}
}

// fetchPublic downloads and proves the requested public module version.
func (p *Pipeline) fetchPublic(ctx context.Context, j *Job) error {
	m := module.Version{Path: j.Request.Module, Version: j.Request.Version}
	if err := module.Check(m.Path, m.Version); err != nil || semver.Canonical(m.Version) != m.Version {
		if err == nil {
			err = fmt.Errorf("version %q is not canonical", m.Version)
		}
		return reject(fmt.Errorf("%w: %v", ErrBadVersion, err))
	}
	if p.private.Match(m.Path) {
		return reject(ErrPrivatePath)
	}
	f, err := p.upstream.get()
	if err != nil {
		return err
	}
	mod, err := f.Fetch(ctx, m)
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.Err != nil {
		// The verdict names the module already: keep check and reason.
		err = &checkOnly{check: ue.Check, err: err, inner: ue.Err}
	}
	switch {
	case err == nil:
	case upstream.IsSecurity(err):
		return security(err)
	case upstream.IsTransient(err):
		return err
	default:
		return reject(err)
	}
	j.Module, j.ZipFile, j.ZipHash, j.ModHash, j.GoMod = m, mod.ZipPath, mod.ZipHash, mod.ModHash, mod.GoMod
	j.TagTime = mod.Info.Time
	j.Upstream = mod.Proxy
	return nil
}

// Upstream returns the fetcher of public modules, made on first use.
func (p *Pipeline) Upstream() (*upstream.Fetcher, error) { return p.upstream.get() }

// checkOnly prints an upstream error as "check: reason", without the
// module the verdict line already names, and unwraps to the whole error.
type checkOnly struct {
	check      string
	err, inner error
}

func (e *checkOnly) Error() string { return e.check + ": " + e.inner.Error() }
func (e *checkOnly) Unwrap() error { return e.err }

// lazyUpstream builds the upstream fetcher on first use.
type lazyUpstream struct {
	once sync.Once
	f    *upstream.Fetcher
	err  error
	make func() (*upstream.Fetcher, error)
}

func (l *lazyUpstream) get() (*upstream.Fetcher, error) {
	l.once.Do(func() { l.f, l.err = l.make() })
	return l.f, l.err
}

// newUpstream makes the fetcher from the configuration: the upstream
// GOPROXY (upstream.goproxy, public_sumdb.goproxy, or the go command's),
// proven against the public checksum database the dependency stage uses.
func newUpstream(cfg *config.Config, db *lazyPublicDB, tmpDir string, p *Pipeline) func() (*upstream.Fetcher, error) {
	return func() (*upstream.Fetcher, error) {
		goproxy := cfg.Upstream.GOPROXY
		if goproxy == "" {
			goproxy = cfg.PublicSumDB.GOPROXY
		}
		if goproxy == "" {
			goproxy, _ = goEnv()
		}
		return upstream.New(upstream.Options{GOPROXY: goproxy, DB: db, TempDir: tmpDir, Logger: p.log})
	}
}

// removeStaleDownloads removes what a crash left of upstream downloads.
func removeStaleDownloads(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if len(e.Name()) > 9 && e.Name()[:9] == "upstream-" {
			os.Remove(dir + string(os.PathSeparator) + e.Name())
		}
	}
}
