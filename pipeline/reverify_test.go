package pipeline

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/sumdbtest"
	"github.com/modgate/modgate/verifiers/depsum"
)

// publicTestDB serves go.sum records from a real x/mod sumdb test server
// over HTTP, read through depsum.SumDB with its tlog proofs.
func publicTestDB(t *testing.T, records map[string]string) (*depsum.SumDB, string) {
	t.Helper()
	skey, vkey := sumdbtest.Key(t, "sum.test.example")
	url := sumdbtest.New(skey, records).Serve(t)
	db, err := depsum.NewSumDB(depsum.SumDBOptions{Key: vkey, URL: url, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return db, vkey
}

// TestReverifyPublicDependency: a version admitted while the public
// checksum database agreed with its go.sum fails re-verification, as a
// security problem naming the dependency, once the database says
// otherwise.
func TestReverifyPublicDependency(t *testing.T) {
	const dep, good, bad = "example.com/dep", "h1:Z0ob1TCMAAk2zW+MvSYz6Lu1uV9GhmsFnTBvmFq4eJ4=", "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	const modh = "h1:7mFAnz3hE1Ai7AOVrnGhpqPyNXmlOSM5E0kKPkpVRuI="
	rec := func(zip string) map[string]string {
		return map[string]string{dep + "@v1.0.0": fmt.Sprintf("%s v1.0.0 %s\n%s v1.0.0/go.mod %s\n", dep, zip, dep, modh)}
	}
	var current atomic.Pointer[depsum.SumDB]
	db, _ := publicTestDB(t, rec(good))
	current.Store(db)

	f := newFixture(t, "corp.example/rv")
	f.repo.Write(map[string]string{
		"go.mod": "module corp.example/rv\n\ngo 1.21\n\nrequire example.com/dep v1.0.0\n",
		"go.sum": fmt.Sprintf("%s v1.0.0 %s\n%s v1.0.0/go.mod %s\n", dep, good, dep, modh),
	})
	f.repo.Commit("with a dependency")
	f.repo.TagGPG("v1.0.0")
	checker := &depsum.Checker{Public: depsum.DBFunc(func(ctx context.Context, m module.Version) ([]string, error) {
		return current.Load().Lookup(ctx, m)
	})}
	p, err := New(f.cfg, Options{Store: f.store, Dependencies: checker})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v := p.Admit(ctx, Request{Repo: f.repo.Dir, Tag: "v1.0.0"})
	if v.Result != Admitted {
		t.Fatalf("admission: %s %v", v.Result, v.Lines())
	}
	m := module.Version{Path: "corp.example/rv", Version: "v1.0.0"}
	rv, err := p.NewReverifier(ctx, ReverifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := rv.Version(ctx, m)
	if err != nil || !res.Passed() {
		t.Fatalf("re-verification with the database unchanged: %+v, %v", res, err)
	}
	if strings.Join(res.Skipped, ",") != "" {
		t.Errorf("skipped checks %v: the record keeps the tag object", res.Skipped)
	}

	// The database now holds another hash for the dependency.
	db, vkey := publicTestDB(t, rec(bad))
	current.Store(db)
	res, err = rv.Version(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 1 {
		t.Fatalf("problems %v, want one", res.Lines())
	}
	p0 := res.Problems[0]
	if p0.Check != "dependencies" || !p0.Security || !strings.Contains(p0.Reason, dep+"@v1.0.0") ||
		!strings.Contains(p0.Reason, "checksum mismatch") || !strings.Contains(p0.Reason, bad) {
		t.Errorf("problem %+v", p0)
	}
	if res.summary != (newSummary{}) {
		t.Error("a failing version got a new verification summary")
	}

	// The database cannot be reached: an error (the version keeps its
	// state), not a verdict.
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	unreachable, err := depsum.NewSumDB(depsum.SumDBOptions{Key: vkey, URL: srv.URL, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	current.Store(unreachable)
	if res, err := rv.Version(ctx, m); err == nil {
		t.Errorf("unreachable database: %+v, want an error", res)
	}
}

// TestReverifierGrowsMemos: a run told how many versions it covers makes
// the memo of verified cosign signatures large enough to hold them all for
// the next run (the keyrings' memos: tagsig's TestExpectSignatures); a
// hostile count is bounded.
func TestReverifierGrowsMemos(t *testing.T) {
	f := newFixture(t, "corp.example/grow")
	p, err := New(f.cfg, Options{Store: f.store})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := p.NewReverifier(ctx, ReverifyOptions{Versions: 1_000_000}); err != nil {
		t.Fatal(err)
	}
	if p.memo.Max < 2_500_000 {
		t.Errorf("cosign memo bound %d for a run of a million versions, want at least 2,500,000", p.memo.Max)
	}
	if _, err := p.NewReverifier(ctx, ReverifyOptions{Versions: math.MaxInt}); err != nil {
		t.Fatal(err)
	}
	if p.memo.Max > int(memoPerVersion*maxExpected) {
		t.Errorf("a count of MaxInt versions set the memo bound to %d", p.memo.Max)
	}
}
