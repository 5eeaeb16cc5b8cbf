package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	modzip "golang.org/x/mod/zip"

	"github.com/modgate/modgate/config"
	"github.com/modgate/modgate/internal/testrepo"
	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/verifiers/tagsig"
)

// fixture is a real repository with signed tags, a configuration that
// allows it, and a pipeline over a real file store.
type fixture struct {
	repo  *testrepo.Repo
	cfg   *config.Config
	store *store.Dir
	p     *Pipeline
}

var sharedKeys *testrepo.Keys

func keys(t testing.TB) *testrepo.Keys {
	if sharedKeys == nil {
		dir, err := os.MkdirTemp("", "modgate-keys-")
		if err != nil {
			t.Fatal(err)
		}
		sharedKeys = testrepo.NewKeys(t, dir)
	}
	return sharedKeys
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedKeys != nil {
		os.RemoveAll(sharedKeys.Dir)
	}
	os.Exit(code)
}

func newFixture(t testing.TB, modPath string) *fixture {
	t.Helper()
	testrepo.Require(t)
	k := keys(t)
	dir := t.TempDir()
	r := testrepo.NewRepo(t, k, filepath.Join(dir, "repo"))
	r.Module("", modPath)
	r.Commit("v1")
	cfg := &config.Config{
		DataDir:      filepath.Join(dir, "data"),
		Repositories: []config.Repository{{URL: r.Dir, Modules: []string{modPath}}},
		Signers: []config.Signer{{
			Name: "release-team", Modules: []string{modPath},
			OpenPGPKeys: []string{k.GPGPublic}, SSHAllowedSigners: k.AllowedSigners,
		}},
	}
	p, st := newPipeline(t, cfg)
	return &fixture{repo: r, cfg: cfg, store: st, p: p}
}

// newPipeline completes and validates cfg and builds a pipeline on a new
// store in its data directory.
func newPipeline(t testing.TB, cfg *config.Config) (*Pipeline, *store.Dir) {
	t.Helper()
	cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(cfg.Store.Dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return p, st
}

func (f *fixture) admit(tag string) *Verdict {
	return f.p.Admit(context.Background(), Request{Repo: f.repo.Dir, Tag: tag})
}

func TestAdmitVerdict(t *testing.T) {
	f := newFixture(t, "corp.example/verdict")
	f.repo.TagGPG("v1.0.0")
	v := f.admit("v1.0.0")
	if v.Result != Admitted {
		t.Fatalf("result %s, problems %v", v.Result, v.Lines())
	}
	if v.Module != "corp.example/verdict" || v.Version != "v1.0.0" || len(v.Commit) != 40 || v.TagTime == nil {
		t.Errorf("verdict coordinates: %+v", v)
	}
	if v.Signer == nil || v.Signer.Type != "openpgp" || v.Signer.Fingerprint == "" {
		t.Errorf("signer: %+v", v.Signer)
	}
	if v.Hashes == nil || !strings.HasPrefix(v.Hashes.Zip, "h1:") || !strings.HasPrefix(v.Hashes.Mod, "h1:") {
		t.Errorf("hashes: %+v", v.Hashes)
	}
	if got, want := len(v.Stages), len(f.p.Stages()); got != want {
		t.Fatalf("%d stage results, want %d", got, want)
	}
	for _, s := range v.Stages {
		if s.Status != "ok" {
			t.Errorf("stage %s: %s %s", s.Name, s.Status, s.Detail)
		}
	}
	pub, err := f.store.Lookup(context.Background(), moduleVersion(v))
	if err != nil || pub.ZipHash != v.Hashes.Zip || pub.ModHash != v.Hashes.Mod {
		t.Fatalf("store has %+v, %v; verdict %+v", pub, err, v.Hashes)
	}
	if again := f.admit("v1.0.0"); again.Result != Duplicate {
		t.Errorf("second admission: %s %v", again.Result, again.Lines())
	}
}

// A signed tag object re-attached under another ref name vouches for a
// different release: a security rejection.
func TestTagObjectUnderAnotherName(t *testing.T) {
	f := newFixture(t, "corp.example/replay")
	f.repo.TagGPG("v1.0.0")
	obj := strings.TrimSpace(f.repo.Git("rev-parse", "refs/tags/v1.0.0"))
	f.repo.Git("update-ref", "refs/tags/v1.0.1", obj)
	v := f.admit("v1.0.1")
	if v.Result != Rejected || len(v.Problems) != 1 || !v.Problems[0].Security || v.Problems[0].Check != "identify" {
		t.Fatalf("got %s %+v", v.Result, v.Problems)
	}
	if !strings.Contains(v.Problems[0].Reason, `tag object is named "v1.0.0" but was found at refs/tags/v1.0.1`) {
		t.Errorf("reason: %s", v.Problems[0].Reason)
	}
}

// When the signature fails, the independent checks after it still run, so
// the verdict lists every failed check; publish does not run.
func TestAllFailedChecksReported(t *testing.T) {
	f := newFixture(t, "corp.example/many")
	f.repo.Write(map[string]string{"a.go": "package many\n", "A.go": "package many\n"})
	f.repo.Commit("collision")
	f.repo.Git("tag", "-a", "-m", "unsigned", "v1.0.0")
	v := f.admit("v1.0.0")
	var checks []string
	for _, p := range v.Problems {
		checks = append(checks, p.Check)
	}
	if v.Result != Rejected || strings.Join(checks, ",") != "tag-signature,module-zip" {
		t.Fatalf("result %s, failed checks %v: %v", v.Result, checks, v.Lines())
	}
	if !strings.Contains(v.Problems[0].Reason, tagsig.ErrUnsigned.Error()) ||
		!strings.Contains(v.Problems[1].Reason, "case-insensitive file name collision") {
		t.Errorf("reasons: %v", v.Lines())
	}
	last := v.Stages[len(v.Stages)-1]
	if last.Name != "publish" || last.Status != "skipped" {
		t.Errorf("publish stage: %+v", last)
	}
}

// faultMirror wraps a real mirror and fails on command.
type faultMirror struct {
	Mirror
	fetchErr error
	treeSize int64
	panicOn  string
}

func (m *faultMirror) FetchTag(ctx context.Context, tag string) error {
	if m.fetchErr != nil {
		return m.fetchErr
	}
	return m.Mirror.FetchTag(ctx, tag)
}

func (m *faultMirror) TreeSize(ctx context.Context, commit, dir string) (int64, error) {
	if m.treeSize != 0 {
		return m.treeSize, nil
	}
	return m.Mirror.TreeSize(ctx, commit, dir)
}

func (m *faultMirror) ReadFile(ctx context.Context, commit, file string, limit int64) ([]byte, error) {
	if m.panicOn == "ReadFile" {
		panic("injected")
	}
	return m.Mirror.ReadFile(ctx, commit, file, limit)
}

func (f *fixture) inject(fm *faultMirror) {
	open := f.p.OpenMirror
	f.p.OpenMirror = func(ctx context.Context, repo string) (Mirror, error) {
		m, err := open(ctx, repo)
		if err != nil {
			return nil, err
		}
		fm.Mirror = m
		return fm, nil
	}
}

func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fm        faultMirror
		result    Result
		check     string
		reason    string
		transient bool
	}{
		{"network failure is transient", faultMirror{fetchErr: errors.New("connection reset by peer")},
			Errored, "fetch", "connection reset by peer", true},
		{"oversized tree is refused before zipping", faultMirror{treeSize: modzip.MaxZipFile + 1},
			Rejected, "module-zip", "over the 524288000-byte module limit", false},
		{"a panicking stage is an error, never an admission", faultMirror{panicOn: "ReadFile"},
			Errored, "identify", "internal error in stage identify: injected", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "corp.example/fault")
			f.repo.TagGPG("v1.0.0")
			fm := tc.fm
			f.inject(&fm)
			v := f.admit("v1.0.0")
			if v.Result != tc.result || len(v.Problems) != 1 {
				t.Fatalf("result %s, problems %+v", v.Result, v.Problems)
			}
			p := v.Problems[0]
			if p.Check != tc.check || p.Transient != tc.transient || !strings.Contains(p.Reason, tc.reason) {
				t.Errorf("problem %+v", p)
			}
			if _, err := os.Stat(filepath.Join(f.cfg.Store.Dir, "corp.example")); !os.IsNotExist(err) {
				t.Errorf("something was published: %v", err)
			}
		})
	}
}

// BenchmarkAdmit admits a module of a few hundred files, signed with ssh,
// into a fresh store each time, and reports the mean time of each stage.
func BenchmarkAdmit(b *testing.B) {
	f := newFixture(b, "corp.example/bench")
	files := map[string]string{}
	for i := range 300 {
		files[fmt.Sprintf("pkg%02d/file%03d.go", i%20, i)] = fmt.Sprintf("package pkg%02d\n\n// F%d is generated.\nfunc F%d() int { return %d }\n%s",
			i%20, i, i, i, strings.Repeat("// padding line for a realistic file size\n", 40))
	}
	f.repo.Write(files)
	f.repo.Commit("300 files")
	f.repo.TagSSH("v1.0.0")
	stageTotals := map[string]float64{}
	b.ResetTimer()
	for i := range b.N {
		st, err := store.Open(filepath.Join(b.TempDir(), fmt.Sprint(i)))
		if err != nil {
			b.Fatal(err)
		}
		f.p.store = st
		v := f.admit("v1.0.0")
		if v.Result != Admitted {
			b.Fatalf("%s: %v", v.Result, v.Lines())
		}
		for _, s := range v.Stages {
			stageTotals[s.Name] += s.DurationMS
		}
	}
	for name, total := range stageTotals {
		b.ReportMetric(total/float64(b.N), name+"-ms")
	}
}

// A public dependency while the public checksum database is unreachable is
// a transient failure: retried later, never a rejection.
func TestDependenciesUnreachableIsTransient(t *testing.T) {
	f := newFixture(t, "corp.example/deps")
	f.repo.Write(map[string]string{
		"go.mod": "module corp.example/deps\n\ngo 1.21\n\nrequire golang.org/x/mod v0.42.0\n",
		"go.sum": "golang.org/x/mod v0.42.0 h1:3ZzB1uKOaUTQ8gPBHa14ZtwlbSzFuHGimWSdmyv7xUc=\n" +
			"golang.org/x/mod v0.42.0/go.mod h1:mWMeYHUTgw7OhuC+3KRzmfVJNzp3ay/nkGEwtPxMpUQ=\n",
	})
	f.repo.Commit("public dependency")
	f.repo.TagGPG("v1.0.0")
	cfg := *f.cfg
	cfg.PublicSumDB.GOPROXY = "http://127.0.0.1:1" // nothing listens on port 1
	cfg.PublicSumDB.GOSUMDB = "sum.golang.org"
	cfg.PublicSumDB.Timeout = 2 * time.Second
	p, err := New(&cfg, Options{Store: f.store})
	if err != nil {
		t.Fatal(err)
	}
	v := p.Admit(context.Background(), Request{Repo: f.repo.Dir, Tag: "v1.0.0"})
	if v.Result != Errored || len(v.Problems) != 1 || v.Problems[0].Check != "dependencies" || !v.Problems[0].Transient {
		t.Fatalf("result %s, problems %+v", v.Result, v.Problems)
	}
	if _, err := os.Stat(filepath.Join(f.cfg.Store.Dir, "corp.example")); !os.IsNotExist(err) {
		t.Errorf("published while the database was unreachable: %v", err)
	}
}

// A job that published and died before its verdict was recorded comes back
// with the same event id: it reports the admission, not a duplicate; another
// event for the same version is a duplicate.
func TestRedeliveredJobReportsItsAdmission(t *testing.T) {
	f := newFixture(t, "corp.example/redeliver")
	f.repo.TagGPG("v1.0.0")
	ctx := context.Background()
	first := f.p.Admit(ctx, Request{Repo: f.repo.Dir, Tag: "v1.0.0", EventID: "event-1"})
	again := f.p.Admit(ctx, Request{Repo: f.repo.Dir, Tag: "v1.0.0", EventID: "event-1"})
	other := f.p.Admit(ctx, Request{Repo: f.repo.Dir, Tag: "v1.0.0", EventID: "event-2"})
	if first.Result != Admitted || again.Result != Admitted || other.Result != Duplicate {
		t.Fatalf("first %s, redelivered %s, other event %s", first.Result, again.Result, other.Result)
	}
}

// TestWildcardRepositoryBinding: an entry covering every repository under
// a directory lets each publish only the modules its own name binds, each
// from the directory the go command would fetch it from: a tag in one
// repository that claims another repository's module path is refused,
// even signed by a trusted key, and so is a root tag that claims a nested
// module's path.
func TestWildcardRepositoryBinding(t *testing.T) {
	testrepo.Require(t)
	k := keys(t)
	dir := t.TempDir()
	alpha := testrepo.NewRepo(t, k, filepath.Join(dir, "git", "alpha"))
	alpha.Module("", "corp.example/beta")
	alpha.Commit("v1")
	alpha.TagGPG("v1.0.0")
	beta := testrepo.NewRepo(t, k, filepath.Join(dir, "git", "beta"))
	beta.Module("", "corp.example/beta/sub")
	beta.Commit("v1")
	beta.TagGPG("v1.0.0")
	beta.Module("", "corp.example/beta")
	beta.Module("sub", "corp.example/beta/sub")
	beta.Commit("v2")
	beta.TagGPG("v1.1.0")
	beta.TagGPG("sub/v1.1.0")
	cfg := &config.Config{
		DataDir:      filepath.Join(dir, "data"),
		Repositories: []config.Repository{{URL: filepath.Join(dir, "git", "*"), Modules: []string{"corp.example/*"}}},
		Signers:      []config.Signer{{Name: "release-team", Modules: []string{"corp.example"}, OpenPGPKeys: []string{k.GPGPublic}}},
	}
	p, _ := newPipeline(t, cfg)
	ctx := context.Background()
	for _, tc := range []struct {
		repo *testrepo.Repo
		tag  string
		want string // "" for admitted
	}{
		{alpha, "v1.0.0", "may publish only corp.example/alpha, not corp.example/beta"},
		{beta, "v1.0.0", "tag v1.0.0 of " + beta.Dir + " may publish only corp.example/beta (its root module path and the tag's directory), not corp.example/beta/sub"},
		{beta, "v1.1.0", ""},
		{beta, "sub/v1.1.0", ""},
	} {
		v := p.Admit(ctx, Request{Repo: tc.repo.Dir, Tag: tc.tag})
		if tc.want == "" && v.Result != Admitted || tc.want != "" && (v.Result != Rejected || !strings.Contains(strings.Join(v.Lines(), "\n"), tc.want)) {
			t.Errorf("%s %s: %s %v", filepath.Base(tc.repo.Dir), tc.tag, v.Result, v.Lines())
		}
	}
}

// TestRepositoryRoot: a literal repository entry with a root publishes
// from a tag <dir>/vX.Y.Z only <root>/<dir>[/vN]: a root tag whose go.mod
// claims a nested module's path is refused, as it is for a wildcard entry.
// Without root the patterns alone apply, and that tag is admitted.
func TestRepositoryRoot(t *testing.T) {
	for _, root := range []string{"corp.example/mono", ""} {
		f := newFixture(t, "corp.example/mono")
		f.cfg.Repositories[0].Root = root
		f.repo.Module("", "corp.example/mono/tools/lint")
		f.repo.Commit("root claims a nested path")
		f.repo.TagGPG("v1.0.0")
		f.repo.Module("", "corp.example/mono/v2")
		f.repo.Module("tools/lint", "corp.example/mono/tools/lint")
		f.repo.Commit("v2 at the root, a nested module")
		f.repo.TagGPG("v2.0.0")
		f.repo.TagGPG("tools/lint/v1.1.0")
		want := map[string]string{
			"v1.0.0":            "tag v1.0.0 of " + f.repo.Dir + " may publish only corp.example/mono (its root module path and the tag's directory), not corp.example/mono/tools/lint",
			"v2.0.0":            "",
			"tools/lint/v1.1.0": "",
		}
		if root == "" {
			want["v1.0.0"] = ""
		}
		for _, tag := range []string{"v1.0.0", "v2.0.0", "tools/lint/v1.1.0"} {
			v := f.admit(tag)
			if w := want[tag]; w == "" && v.Result != Admitted || w != "" && (v.Result != Rejected || !strings.Contains(strings.Join(v.Lines(), "\n"), w)) {
				t.Errorf("root %q, %s: %s %v", root, tag, v.Result, v.Lines())
			}
		}
	}
}

// TestTagDirectoryMatchesModulePath: a tag <dir>/vX.Y.Z publishes the
// module in <dir> only if its path ends in /<dir> (before a /vN), as the
// go command maps module paths to tags; otherwise the same module version
// could be published from two directories.
func TestTagDirectoryMatchesModulePath(t *testing.T) {
	f := newFixture(t, "corp.example/nest")
	f.repo.Module("other", "corp.example/nest/sub")
	f.repo.Module("sub", "corp.example/nest/sub")
	f.repo.Module("tools/v2", "corp.example/nest/tools/v2")
	f.repo.Commit("nested modules")
	for tag, want := range map[string]string{
		"other/v1.0.0": "tag other/v1.0.0 is for directory other, but the go.mod there declares module corp.example/nest/sub, whose path does not end in /other",
		"sub/v1.0.0":   "",
		"tools/v2.0.0": "",
	} {
		f.repo.TagGPG(tag)
		v := f.admit(tag)
		if want == "" && v.Result != Admitted || want != "" && (v.Result != Rejected || !strings.Contains(strings.Join(v.Lines(), "\n"), want)) {
			t.Errorf("%s: %s %v", tag, v.Result, v.Lines())
		}
	}
}
