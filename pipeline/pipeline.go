package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	modzip "golang.org/x/mod/zip"

	"github.com/modgate/modgate/config"
	"github.com/modgate/modgate/mirror"
	"github.com/modgate/modgate/policies"
	"github.com/modgate/modgate/sbom"
	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/upstream"
	"github.com/modgate/modgate/verifiers/depsum"
	"github.com/modgate/modgate/verifiers/integrity"
)

// Store is where admitted versions are published. Implementations must be
// safe for concurrent use, by several processes sharing one store.
type Store interface {
	// Lookup returns the hashes of a published version, or an error
	// satisfying errors.Is(err, fs.ErrNotExist) when it is not published.
	Lookup(ctx context.Context, m module.Version) (*store.Published, error)
	// Publish makes v visible atomically: when it returns nil, every file of
	// the version is durable and listed. It never overwrites: publishing a
	// version that exists with the same hashes returns (false, nil) and
	// completes a listing a crash interrupted; with different hashes it
	// returns an error satisfying errors.Is(err, store.ErrConflict).
	Publish(ctx context.Context, v *store.Version) (created bool, err error)
	// OpenFile opens one file of a published version (".verdict.json", …);
	// errors.Is(err, fs.ErrNotExist) when absent.
	OpenFile(ctx context.Context, m module.Version, suffix string) (*os.File, error)
	// OpenVersion opens the files of one published version together.
	OpenVersion(ctx context.Context, m module.Version) (*store.Files, error)
	// ReadVersion is OpenVersion, reading .info into buf on the way.
	ReadVersion(ctx context.Context, m module.Version, buf []byte) (*store.Files, []byte, error)
	// ReadFile reads one file of a published version whole; a file larger
	// than limit is an error.
	ReadFile(ctx context.Context, m module.Version, suffix string, limit int64, buf []byte) ([]byte, error)
}

// ChecksumLog is modgate's checksum database: an append-only log of go.sum
// records that clients verify private modules against.
type ChecksumLog interface {
	// Append adds the go.sum record of m ("M V h1:…\nM V/go.mod h1:…\n").
	// It is durable when Append returns, and idempotent: the same text
	// again returns the same id; a different text for m is an error
	// wrapping sumlog.ErrConflict, and the log is unchanged.
	Append(ctx context.Context, m module.Version, text []byte) (id int64, err error)
	// Lookup returns m's record, or an error satisfying
	// errors.Is(err, fs.ErrNotExist).
	Lookup(ctx context.Context, m module.Version) (id int64, text []byte, err error)
}

// Mirror is the local copy of a repository that the stages read from.
type Mirror interface {
	// FetchTag brings refs/tags/<tag> from the remote; mirror.ErrNotFound
	// when the remote has no such tag.
	FetchTag(ctx context.Context, tag string) error
	ReadTag(ctx context.Context, tag string) (*mirror.Tag, error)
	// ReadFile returns file at commit; mirror.ErrNotFound when absent.
	ReadFile(ctx context.Context, commit, file string, limit int64) ([]byte, error)
	// TreeSize is the total blob size under dir at commit.
	TreeSize(ctx context.Context, commit, dir string) (int64, error)
	// ModuleFiles returns the files of the module at commit under dir,
	// as zip.CreateFromVCS would collect them; limit bounds git's output.
	ModuleFiles(ctx context.Context, commit, dir string, limit int) ([]modzip.File, error)
}

// Stage is one step of an admission.
type Stage struct {
	Name string
	Run  func(ctx context.Context, j *Job) error
	// Independent marks a check whose results later stages do not need:
	// when it rejects, the checks after it still run, so that the verdict
	// lists every failed check, not only the first.
	Independent bool
	// Effect marks a stage with side effects (publish): it runs only when
	// every stage before it passed.
	Effect bool
}

// Pipeline runs admissions. It is safe for concurrent use.
type Pipeline struct {
	cfg      *config.Config
	store    Store
	sumlog   ChecksumLog // nil when the checksum database is not configured
	deps     DependencyChecker
	policies atomic.Pointer[policies.Set]
	sbomGen  *lazyGenerator
	signer   *sbom.Signer
	version  string
	// signers are the signer groups, replaced whole by ReloadSigners;
	// reloadMu serializes reloads, which remember the last failure.
	signers          atomic.Pointer[signers]
	reloadMu         sync.Mutex
	signersErr       error
	signersErrDigest string
	private          config.Globs    // the module paths configured repositories publish
	memo             *integrity.Memo // signatures re-verification proved, for later runs
	// proofs are the versions re-verification proved (proven.go); nil
	// with a dependency checker modgate did not build.
	proofs *proofs
	// admitting counts admissions running in this process, so that
	// re-verification can make way for them (Busy).
	admitting atomic.Int64
	log       *slog.Logger
	tmpDir    string
	stages    []Stage
	public    []Stage // for public modules from upstream
	upstream  *lazyUpstream
	publicDB  *lazyPublicDB
	depsLines DependencyChecker // for public modules: see depsum.Checker.LinesOnly

	// Now is the clock used for key validity; tests set it.
	Now func() time.Time
	// OpenMirror returns the mirror of a normalized repository; tests replace
	// it to inject faults.
	OpenMirror func(ctx context.Context, repo string) (Mirror, error)
}

// Options are the pipeline's collaborators.
type Options struct {
	Store Store // required
	// ChecksumLog receives the go.sum records of every published version;
	// nil when modgate runs no checksum database.
	ChecksumLog ChecksumLog
	// Dependencies checks go.mod and go.sum; nil builds the checker the
	// configuration describes (modgate's records for private paths, the
	// public checksum database for the rest).
	Dependencies DependencyChecker
	// Signer signs SBOMs and verification summaries; nil publishes them
	// unsigned.
	Signer *sbom.Signer
	// Version is modgate's version, named in SBOMs and summaries.
	Version string
	Logger  *slog.Logger // nil: discard
	// Upstream downloads public modules; nil: made from the configuration
	// on first use (upstream.goproxy, proven against the public checksum
	// database).
	Upstream *upstream.Fetcher
}

// New builds a pipeline from a validated configuration. It reads every key
// file here, so that a bad key is a start-up error, not a rejection; later
// changes to them are taken up by ReloadSigners.
func New(cfg *config.Config, opts Options) (*Pipeline, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Store == nil {
		return nil, errors.New("pipeline: no store")
	}
	p := &Pipeline{cfg: cfg, private: config.JoinGlobs(cfg.PrivatePatterns()), store: opts.Store, sumlog: opts.ChecksumLog, log: log, Now: time.Now,
		tmpDir: filepath.Join(cfg.DataDir, "tmp"), deps: opts.Dependencies, memo: integrity.NewMemo()}
	if opts.Version == "" {
		opts.Version = "devel"
	}
	p.version, p.signer, p.sbomGen = opts.Version, opts.Signer, &lazyGenerator{ver: opts.Version}
	publicDB := &lazyPublicDB{cfg: cfg.PublicSumDB}
	if p.deps == nil {
		p.deps = newDependencyChecker(cfg, opts.Store, opts.ChecksumLog, publicDB)
		p.proofs = new(proofs)
	}
	p.publicDB = publicDB
	p.depsLines = p.deps
	if c, ok := p.deps.(*depsum.Checker); ok {
		lines := *c
		lines.LinesOnly = true
		p.depsLines = &lines
	}
	p.upstream = &lazyUpstream{make: newUpstream(cfg, publicDB, p.tmpDir, p)}
	if opts.Upstream != nil {
		p.upstream.make = func() (*upstream.Fetcher, error) { return opts.Upstream, nil }
	}
	if err := os.MkdirAll(p.tmpDir, 0o755); err != nil {
		return nil, err
	}
	removeStaleDownloads(p.tmpDir)
	files, digest, err := signerFiles(cfg)
	if err != nil {
		return nil, err
	}
	sg, err := loadSigners(cfg, files, digest)
	if err != nil {
		return nil, err
	}
	p.signers.Store(sg)
	git := mirror.Git{Binary: cfg.Git.Binary, Timeout: cfg.Git.Timeout}
	mirrors := filepath.Join(cfg.DataDir, "git")
	p.OpenMirror = func(ctx context.Context, repo string) (Mirror, error) {
		return mirror.Open(ctx, git, mirrors, repo, config.Scheme(repo))
	}
	p.stages = []Stage{
		{Name: "fetch", Run: p.fetch},
		{Name: "identify", Run: p.identify},
		{Name: "tag-signature", Run: p.verifySignature, Independent: true},
		{Name: "module-zip", Run: p.buildZip},
		{Name: "immutability", Run: p.checkImmutable},
		{Name: "dependencies", Run: p.checkDependencies, Independent: true},
		{Name: "sbom", Run: p.buildSBOM},
		{Name: "policy", Run: p.evaluatePolicy, Independent: true},
		{Name: "sign", Run: p.sign, Effect: true},
		{Name: "publish", Run: p.publish, Effect: true},
	}
	p.public = p.publicStages()
	return p, nil
}

// Stages lists the stage names in order.
func (p *Pipeline) Stages() []string {
	var names []string
	for _, s := range p.stages {
		names = append(names, s.Name)
	}
	return names
}

// Admit runs every stage for req and returns the verdict. It never panics
// on hostile input and never returns a nil verdict.
func (p *Pipeline) Admit(ctx context.Context, req Request) *Verdict {
	p.admitting.Add(1)
	defer p.admitting.Add(-1)
	start := time.Now()
	j := &Job{Request: req}
	v := &Verdict{Repo: req.Repo, Tag: req.Tag, EventID: req.EventID, Started: start.UTC()}
	defer func() {
		if j.ZipFile != "" {
			os.Remove(j.ZipFile)
		}
	}()
	log := p.log.With("event_id", req.EventID, "repo", req.Repo, "tag", req.Tag)

	stages := p.stages
	if req.Module != "" {
		stages = p.public
		v.Repo, v.Tag = "", ""
		log = p.log.With("event_id", req.EventID, "module", req.Module, "version", req.Version)
	}
	rejected, stopped := false, false
	var transient bool
	for _, s := range stages {
		if stopped || (rejected && s.Effect) {
			v.Stages = append(v.Stages, StageResult{Name: s.Name, Status: "skipped"})
			continue
		}
		t0 := time.Now()
		err := runStage(ctx, s, j)
		r := StageResult{Name: s.Name, Status: "ok", DurationMS: ms(time.Since(t0))}
		if err != nil {
			var rej *rejection
			if errors.As(err, &rej) {
				r.Status = "rejected"
				rejected = true
				stopped = !s.Independent
				for _, e := range rej.errs {
					v.Problems = append(v.Problems, Problem{Check: s.Name, Reason: oneLine(e.Error()), Security: isSecurity(e)})
				}
			} else {
				r.Status = "error"
				transient, stopped = true, true
				v.Problems = append(v.Problems, Problem{Check: s.Name, Reason: oneLine(err.Error()), Transient: true})
			}
			r.Detail = oneLine(err.Error())
			log.Warn("stage failed", "stage", s.Name, "status", r.Status, "reason", r.Detail)
		}
		v.Stages = append(v.Stages, r)
	}

	v.Module, v.Version = j.Module.Path, j.Module.Version
	if v.Module == "" && req.Module != "" {
		v.Module, v.Version = req.Module, req.Version
	}
	v.TagID, v.Commit, v.Subdir, v.Signer, v.Upstream = j.TagID, j.Commit, j.Subdir, j.Signer, j.Upstream
	if !j.TagTime.IsZero() {
		t := j.TagTime.UTC()
		v.TagTime = &t
	}
	if j.ZipHash != "" {
		v.Hashes = &Hashes{Zip: j.ZipHash, Mod: j.ModHash}
	}
	v.Policy = j.Decision
	v.Documents = j.documents()
	switch {
	case rejected:
		v.Result = Rejected
	case transient:
		v.Result = Errored
	case !j.Published && j.AlreadyPublished:
		v.Result = Duplicate
	default:
		v.Result = Admitted
	}
	if v.Result == Admitted || v.Result == Duplicate {
		v.Dependencies = p.dependencyStatus(ctx, j)
	}
	v.DurationMS = ms(time.Since(start))
	log.Info("admission", "result", v.Result, "module", v.Module, "version", v.Version, "duration_ms", v.DurationMS)
	return v
}

// dependencyStatus lists the public module versions the admitted version's
// go.mod and go.sum name (a build with -mod=mod reads the go.mod of every
// one), each admitted or pending.
func (p *Pipeline) dependencyStatus(ctx context.Context, j *Job) []DependencyStatus {
	admitted := make(map[module.Version]bool)
	var mods []module.Version
	if in := j.PolicyInput; in != nil {
		// The policy stage already looked these up.
		for _, d := range in.Dependencies {
			m := module.Version{Path: d.Path, Version: d.Version}
			mods, admitted[m] = append(mods, m), d.Admitted
		}
	}
	mods = append(mods, j.SumModules...)
	seen := make(map[module.Version]bool)
	var out []DependencyStatus
	for _, m := range mods {
		if seen[m] || p.private.Match(m.Path) || m.Path == j.Module.Path {
			continue
		}
		seen[m] = true
		ok, known := admitted[m]
		if !known {
			ok = p.admitted(ctx, m)
		}
		st := "pending"
		if ok {
			st = "admitted"
		}
		out = append(out, DependencyStatus{Path: m.Path, Version: m.Version, Status: st})
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Path != out[b].Path {
			return out[a].Path < out[b].Path
		}
		return semver.Compare(out[a].Version, out[b].Version) < 0
	})
	return out
}

// runStage runs one stage, turning a panic into a transient error so that a
// bug in one check cannot take down a worker, and never into an admission.
func runStage(ctx context.Context, s Stage, j *Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error in stage %s: %v", s.Name, r)
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.Run(ctx, j)
}

func isSecurity(err error) bool { return errors.Is(err, ErrSecurity) || depsum.IsSecurity(err) }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
