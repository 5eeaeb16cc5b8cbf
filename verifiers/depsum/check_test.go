package depsum

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/mod/module"
)

var mainModule = module.Version{Path: "corp.example/app", Version: "v1.4.0"}

var publicModules = []string{
	"example.com/a@v1.0.0",
	"example.com/b@v1.2.0",
	"example.com/c@v0.1.0",
	"example.com/d/v2@v2.0.0",
	"example.com/e@v2.0.0+incompatible",
	"example.com/p@v0.0.0-20240101000000-abcdefabcdef",
	"example.com/fork@v1.0.1",
}

const goodGoMod = `module corp.example/app

go 1.22

require (
	corp.example/lib v1.0.0
	example.com/a v1.0.0
	example.com/d/v2 v2.0.0
	example.com/e v2.0.0+incompatible
)

require (
	example.com/b v1.2.0 // indirect
	example.com/p v0.0.0-20240101000000-abcdefabcdef // indirect
)
`

// goodGoSum: both lines for the direct requirements and for b (an indirect
// requirement's zip line is allowed, and checked); the go.mod line only for p
// and for c, which go.mod does not name (the pruned module graph); one
// duplicate line.
var goodGoSum = sumLines("corp.example/lib", "v1.0.0") +
	sumLines("example.com/a", "v1.0.0") +
	sumLines("example.com/b", "v1.2.0") +
	modLine("example.com/c", "v0.1.0") +
	sumLines("example.com/d/v2", "v2.0.0") +
	sumLines("example.com/e", "v2.0.0+incompatible") +
	modLine("example.com/p", "v0.0.0-20240101000000-abcdefabcdef") +
	modLine("example.com/a", "v1.0.0")

var privateRecords = recordsFor("corp.example/lib@v1.0.0")

// fixture is a public test database and a Checker using it.
type fixture struct {
	pub     *testDB
	dir     string
	checker *Checker
}

func newFixture(t *testing.T) *fixture {
	pub := newTestDB(t, recordsFor(publicModules...))
	dir := t.TempDir()
	return &fixture{pub: pub, dir: dir, checker: &Checker{
		Public:          newTestSumDB(t, pub.srv.URL, dir),
		Private:         mapDB(privateRecords),
		PrivatePatterns: []string{"corp.example"},
	}}
}

func (f *fixture) check(t *testing.T, gomod, gosum string) (*Report, error) {
	t.Helper()
	return f.checker.Check(context.Background(), mainModule, []byte(gomod), []byte(gosum))
}

// problems returns err's problems, failing unless err is a *CheckErrors.
func problems(t *testing.T, err error) []*Problem {
	t.Helper()
	var ce *CheckErrors
	if !errors.As(err, &ce) {
		t.Fatalf("want *CheckErrors, got %T: %v", err, err)
	}
	return ce.Problems
}

// wantOneProblem checks that err is exactly one problem wrapping sentinel,
// whose message holds every string in wants.
func wantOneProblem(t *testing.T, err, sentinel error, wants ...string) *Problem {
	t.Helper()
	ps := problems(t, err)
	if len(ps) != 1 {
		t.Fatalf("want 1 problem, got %d: %v", len(ps), err)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("want %v, got %v", sentinel, err)
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	if strings.Contains(msg, "\n") {
		t.Errorf("message is not one line: %q", msg)
	}
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q does not contain %q", msg, w)
		}
	}
	return ps[0]
}

func TestCheckGood(t *testing.T) {
	f := newFixture(t)
	rep, err := f.check(t, goodGoMod, goodGoSum)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rep.Checked), strings.Count(goodGoSum, "\n")-1; got != want {
		t.Errorf("checked %d lines, want %d (the duplicate once)", got, want)
	}
	for _, c := range rep.Checked {
		wantDB := "public"
		if strings.HasPrefix(c.Path, "corp.example/") {
			wantDB = "private"
		}
		if !c.OK || c.DB != wantDB {
			t.Errorf("%s: OK=%v DB=%s, want OK against %s", c.Line, c.OK, c.DB, wantDB)
		}
	}
	// The verified tree head is persisted for the next process.
	db := f.checker.Public.(*SumDB)
	latest, err := db.dir.readConfig(testDBName + "/latest")
	if err != nil || !strings.HasPrefix(string(latest), "go.sum database tree\n") {
		t.Errorf("latest tree head not persisted: %q, %v", latest, err)
	}

	// Again, from the cache: no request reaches the database.
	before := f.pub.Requests()
	if _, err := f.check(t, goodGoMod, goodGoSum); err != nil {
		t.Fatal(err)
	}
	if n := f.pub.Requests() - before; n != 0 {
		t.Errorf("warm check made %d requests", n)
	}
}

func TestCheckMismatch(t *testing.T) {
	f := newFixture(t)
	bad := h1("tampered")
	good := zipHash("example.com/a", "v1.0.0")
	gosum := strings.Replace(goodGoSum, good, bad, 1)
	rep, err := f.check(t, goodGoMod, gosum)
	p := wantOneProblem(t, err, ErrMismatch, "example.com/a@v1.0.0", "checksum", bad, good, testDBName, "go.sum line 3")
	if !IsSecurity(err) || IsTransient(err) {
		t.Errorf("IsSecurity=%v IsTransient=%v, want true, false", IsSecurity(err), IsTransient(err))
	}
	if p.Path != "example.com/a" || p.Version != "v1.0.0" || p.Check != "checksum" {
		t.Errorf("problem names %s@%s %s", p.Path, p.Version, p.Check)
	}
	for _, c := range rep.Checked {
		if c.OK == (c.Hash == bad) {
			t.Errorf("%s: OK=%v", c.Line, c.OK)
		}
	}

	// A line for a module go.mod does not name is checked too.
	gosum = strings.Replace(goodGoSum, modHash("example.com/c", "v0.1.0"), bad, 1)
	_, err = f.check(t, goodGoMod, gosum)
	wantOneProblem(t, err, ErrMismatch, "example.com/c@v0.1.0", "go.mod hash")

	// A private line is checked against the private database.
	gosum = strings.Replace(goodGoSum, zipHash("corp.example/lib", "v1.0.0"), bad, 1)
	_, err = f.check(t, goodGoMod, gosum)
	wantOneProblem(t, err, ErrMismatch, "corp.example/lib@v1.0.0", "private checksum database")
}

func TestCheckMissing(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name   string
		remove string // a line dropped from goodGoSum
		want   string // "" for no problem
	}{
		{"indirect go.mod line", modLine("example.com/b", "v1.2.0"), "example.com/b v1.2.0/go.mod"},
		{"direct go.mod line", modLine("example.com/d/v2", "v2.0.0"), "example.com/d/v2 v2.0.0/go.mod"},
		{"direct zip line", "example.com/e v2.0.0+incompatible " + zipHash("example.com/e", "v2.0.0+incompatible") + "\n", "example.com/e v2.0.0+incompatible h1:"},
		{"private zip line", "corp.example/lib v1.0.0 " + zipHash("corp.example/lib", "v1.0.0") + "\n", "corp.example/lib v1.0.0 h1:"},
		{"indirect zip line", "example.com/b v1.2.0 " + zipHash("example.com/b", "v1.2.0") + "\n", ""},
		{"unrequired module", modLine("example.com/c", "v0.1.0"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gosum := strings.Replace(goodGoSum, tc.remove, "", 1)
			if gosum == goodGoSum {
				t.Fatal("line to remove not found")
			}
			_, err := f.check(t, goodGoMod, gosum)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantOneProblem(t, err, ErrMissing, "require", tc.want)
			if IsTransient(err) || IsSecurity(err) {
				t.Error("a missing line is neither transient nor a security event")
			}
		})
	}
}

func TestCheckReplace(t *testing.T) {
	f := newFixture(t)
	t.Run("local", func(t *testing.T) {
		gomod := goodGoMod + "replace example.com/a => ../a\n"
		_, err := f.check(t, gomod, goodGoSum)
		p := wantOneProblem(t, err, ErrLocalReplace, "example.com/a: replace:", `"../a"`)
		if p.Path != "example.com/a" || p.Version != "" {
			t.Errorf("problem names %s@%s", p.Path, p.Version)
		}
	})
	t.Run("local one version", func(t *testing.T) {
		gomod := goodGoMod + "replace example.com/b v1.2.0 => /src/b\n"
		_, err := f.check(t, gomod, strings.Replace(goodGoSum, modLine("example.com/b", "v1.2.0"), "", 1))
		wantOneProblem(t, err, ErrLocalReplace, "example.com/b@v1.2.0: replace:")
	})

	withFork := strings.Replace(goodGoSum, sumLines("example.com/a", "v1.0.0"), sumLines("example.com/fork", "v1.0.1"), 1)
	withFork = strings.Replace(withFork, modLine("example.com/a", "v1.0.0"), "", 1)
	for _, directive := range []string{
		"replace example.com/a => example.com/fork v1.0.1\n",
		"replace example.com/a v1.0.0 => example.com/fork v1.0.1\n",
	} {
		t.Run("module "+directive, func(t *testing.T) {
			gomod := goodGoMod + directive
			if _, err := f.check(t, gomod, withFork); err != nil {
				t.Fatalf("replacement's lines present: %v", err)
			}
			// The replacement's lines are the ones needed, not the original's.
			_, err := f.check(t, gomod, goodGoSum)
			ps := problems(t, err)
			if len(ps) != 2 || !errors.Is(err, ErrMissing) {
				t.Fatalf("want 2 missing lines, got %v", err)
			}
			for _, p := range ps {
				if p.Path != "example.com/fork" || !strings.Contains(p.Error(), "replacement for example.com/a@v1.0.0") {
					t.Errorf("problem %v", p)
				}
			}
		})
	}
	t.Run("other version not replaced", func(t *testing.T) {
		gomod := goodGoMod + "replace example.com/a v0.9.0 => example.com/fork v1.0.1\n"
		if _, err := f.check(t, gomod, goodGoSum); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCheckPrivate(t *testing.T) {
	f := newFixture(t)
	gomod := strings.Replace(goodGoMod, "corp.example/lib v1.0.0", "corp.example/lib v1.1.0", 1)
	gosum := strings.Replace(goodGoSum, sumLines("corp.example/lib", "v1.0.0"), sumLines("corp.example/lib", "v1.1.0"), 1)
	_, err := f.check(t, gomod, gosum)
	p := wantOneProblem(t, err, ErrNotInDB, "corp.example/lib@v1.1.0", "not admitted by modgate")
	if IsTransient(err) || IsSecurity(err) || p.Check != "checksum" {
		t.Errorf("IsTransient=%v IsSecurity=%v check=%s", IsTransient(err), IsSecurity(err), p.Check)
	}
	// Private module paths never reach the public database.
	asked := f.pub.Lookups()
	if len(asked) == 0 {
		t.Fatal("no public lookups recorded")
	}
	for _, p := range asked {
		if strings.Contains(p, "corp.example") {
			t.Errorf("the public database was asked about %s", p)
		}
	}

	// No public database: a configuration error, not a verdict.
	c := *f.checker
	c.Public = nil
	_, err = c.Check(context.Background(), mainModule, []byte(goodGoMod), []byte(goodGoSum))
	if !errors.Is(err, ErrConfig) || IsTransient(err) || errors.As(err, new(*CheckErrors)) {
		t.Errorf("want ErrConfig, got %v", err)
	}
	// Unless every line is private.
	onlyPrivate := "module corp.example/app\n\ngo 1.22\n\nrequire corp.example/lib v1.0.0\n"
	if _, err := c.Check(context.Background(), mainModule, []byte(onlyPrivate), []byte(sumLines("corp.example/lib", "v1.0.0"))); err != nil {
		t.Fatal(err)
	}
}

func TestCheckNotInPublicDB(t *testing.T) {
	f := newFixture(t)
	gosum := goodGoSum + sumLines("example.com/ghost", "v1.0.0")
	_, err := f.check(t, goodGoMod, gosum)
	wantOneProblem(t, err, ErrNotInDB, "example.com/ghost@v1.0.0", "404 Not Found", "public checksum database "+testDBName)
}

func TestCheckMalformed(t *testing.T) {
	f := newFixture(t)
	_, err := f.check(t, goodGoMod, goodGoSum+"example.com/x v1.0.0 h2:abc\n")
	wantOneProblem(t, err, ErrBadGoSum, "go.sum: ", "line 14", "only h1: hashes")
	_, err = f.check(t, "module corp.example/other\n", goodGoSum)
	wantOneProblem(t, err, ErrBadGoMod, "corp.example/other")
	_, err = f.check(t, strings.Replace(goodGoMod, "v1.2.0", "v1.2", 1), goodGoSum)
	wantOneProblem(t, err, ErrBadGoMod, "not canonical")
}

// TestCheckUnavailable: a database that cannot be reached makes the check
// transient: not a rejection, and not remembered once it is back.
func TestCheckUnavailable(t *testing.T) {
	f := newFixture(t)
	f.pub.srv.Close()
	_, err := f.check(t, goodGoMod, goodGoSum)
	if !IsTransient(err) || IsSecurity(err) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("IsTransient=%v IsSecurity=%v: %v", IsTransient(err), IsSecurity(err), err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("message does not say why: %v", err)
	}
	// One problem per module version, not per line.
	if n := len(problems(t, err)); n != 6 {
		t.Errorf("%d problems, want 6 (one per public module version): %v", n, err)
	}

	// A failing private database is transient too.
	c := *f.checker
	c.Public = newFixture(t).checker.Public
	c.Private = DBFunc(func(ctx context.Context, m module.Version) ([]string, error) {
		return nil, errors.New("nats: timeout")
	})
	_, err = c.Check(context.Background(), mainModule, []byte(goodGoMod), []byte(goodGoSum))
	wantOneProblem(t, err, ErrUnavailable, "corp.example/lib@v1.0.0", "nats: timeout")
	if !IsTransient(err) {
		t.Error("not transient")
	}

	// A permanent problem beside a transient one: a rejection.
	f2 := newFixture(t)
	f2.pub.srv.Close()
	_, err = f2.check(t, goodGoMod, strings.Replace(goodGoSum, modLine("example.com/b", "v1.2.0"), "", 1))
	if IsTransient(err) || !errors.Is(err, ErrMissing) {
		t.Errorf("IsTransient=%v: %v", IsTransient(err), err)
	}
}

func TestCheckServerErrorRecovers(t *testing.T) {
	f := newFixture(t)
	f.pub.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return true
	})
	_, err := f.check(t, goodGoMod, goodGoSum)
	if !IsTransient(err) || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "overloaded") {
		t.Fatalf("want transient 503, got %v", err)
	}
	f.pub.Intercept(nil)
	if _, err := f.check(t, goodGoMod, goodGoSum); err != nil {
		t.Fatalf("after the database recovered: %v", err)
	}
}

func TestCheckCanceled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.checker.Check(ctx, mainModule, []byte(goodGoMod), []byte(goodGoSum))
	if !errors.Is(err, context.Canceled) || !IsTransient(err) {
		t.Fatalf("want transient context.Canceled, got %v", err)
	}
}

// TestCheckOrder: problems come in a stable order (go.mod order, then go.sum
// order) whatever order the parallel lookups finish in.
func TestCheckOrder(t *testing.T) {
	f := newFixture(t)
	var gosum strings.Builder
	var want []string
	for i := range 30 {
		p := fmt.Sprintf("example.com/m%02d", i)
		gosum.WriteString(sumLines(p, "v1.0.0"))
		want = append(want, p)
		f.pub.Set(p+"@v1.0.0", strings.Replace(sumLines(p, "v1.0.0"), zipHash(p, "v1.0.0"), h1("other"), 1))
	}
	gomod := "module corp.example/app\n\ngo 1.22\n\nrequire example.com/zz v1.0.0\n"
	for range 3 {
		_, err := f.checker.Check(context.Background(), mainModule, []byte(gomod), []byte(gosum.String()))
		ps := problems(t, err)
		if len(ps) != 32 {
			t.Fatalf("%d problems: %v", len(ps), err)
		}
		if ps[0].Path != "example.com/zz" || ps[1].Path != "example.com/zz" {
			t.Errorf("go.mod problems first: %v, %v", ps[0], ps[1])
		}
		for i, p := range ps[2:] {
			if p.Path != want[i] || !errors.Is(p, ErrMismatch) {
				t.Fatalf("problem %d: %v, want a mismatch for %s", i, p, want[i])
			}
		}
	}
}

func TestCheckerValidate(t *testing.T) {
	db := mapDB(nil)
	for _, tc := range []struct {
		name string
		c    Checker
		ok   bool
	}{
		{"public only", Checker{Public: db}, true},
		{"private only", Checker{Private: db, PrivatePatterns: []string{"corp.example"}}, true},
		{"nothing", Checker{}, false},
		{"patterns without db", Checker{Public: db, PrivatePatterns: []string{"corp.example"}}, false},
		{"db without patterns", Checker{Public: db, Private: db}, false},
		{"comma", Checker{Public: db, Private: db, PrivatePatterns: []string{"a,b"}}, false},
		{"bad glob", Checker{Public: db, Private: db, PrivatePatterns: []string{"a/[b"}}, false},
		{"trailing escape", Checker{Public: db, Private: db, PrivatePatterns: []string{"corp.example", `a/b\`}}, false},
		{"bad class range", Checker{Public: db, Private: db, PrivatePatterns: []string{"a/[z-]"}}, false},
		{"wildcards", Checker{Public: db, Private: db, PrivatePatterns: []string{"corp.example/*", "a?b", `a/[bc]`, `x\*`}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Fatalf("Validate: %v", err)
			}
			_, cerr := tc.c.Check(context.Background(), mainModule, []byte("module corp.example/app\n"), nil)
			if tc.ok != (cerr == nil) {
				t.Fatalf("Check: %v", cerr)
			}
		})
	}
}
