package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/verifiers/depsum"
)

func TestFetch(t *testing.T) {
	e := newEnv(t)
	tm := helloModule(t, "v1.0.0")
	e.publish(tm)
	f := e.fetcher(Options{})

	mod, err := e.fetch(f, tm.m)
	if err != nil {
		t.Fatal(err)
	}
	if mod.Version != tm.m {
		t.Errorf("Version = %v", mod.Version)
	}
	if mod.ZipHash != tm.zipHash(t) || mod.ModHash != tm.modHash(t) {
		t.Errorf("hashes %s %s, want %s %s", mod.ZipHash, mod.ModHash, tm.zipHash(t), tm.modHash(t))
	}
	if want := strings.Split(strings.TrimSuffix(tm.record(t), "\n"), "\n"); !slices.Equal(mod.DBLines, want) {
		t.Errorf("DBLines = %q, want %q", mod.DBLines, want)
	}
	if !bytes.Equal(mod.GoMod, tm.mod) {
		t.Errorf("GoMod = %q", mod.GoMod)
	}
	if mod.Info.Version != "v1.0.0" || !mod.Info.Time.Equal(testTime) || !bytes.Equal(mod.Info.Raw, tm.info) {
		t.Errorf("Info = %+v", mod.Info)
	}
	if mod.Proxy != e.proxy.srv.URL {
		t.Errorf("Proxy = %q", mod.Proxy)
	}
	if data, err := os.ReadFile(mod.ZipPath); err != nil || !bytes.Equal(data, tm.zip) {
		t.Errorf("zip at %s: %v (equal: %v)", mod.ZipPath, err, bytes.Equal(data, tm.zip))
	}
	if got := e.db.lookups(); got != 1 {
		t.Errorf("%d lookups in the checksum database, want 1", got)
	}
	if err := mod.Remove(); err != nil {
		t.Fatal(err)
	}
	if left := e.tempFiles(); len(left) > 0 {
		t.Errorf("left in TempDir: %q", left)
	}
}

// A module without go.mod: the proxy serves the go.mod the go command
// synthesizes, and sum.golang.org holds that file's hash.
func TestFetchWithoutGoMod(t *testing.T) {
	e := newEnv(t)
	tm := newModule(t, "example.com/legacy", "v1.0.0", map[string]string{"legacy.go": "package legacy\n"})
	if string(tm.mod) != "module example.com/legacy\n" {
		t.Fatalf("mod = %q", tm.mod)
	}
	e.publish(tm)
	mod, err := e.fetch(e.fetcher(Options{}), tm.m)
	if err != nil {
		t.Fatal(err)
	}
	mod.Remove()

	// Any other .mod for such a module is refused, even with the database's
	// blessing: it is not what the go command makes.
	other := newModule(t, "example.com/legacy", "v1.1.0", map[string]string{"legacy.go": "package legacy\n"})
	other.mod = []byte("module example.com/legacy\n\nrequire example.com/evil v1.0.0\n")
	e.publish(other)
	_, err = e.fetch(e.fetcher(Options{}), other.m)
	wantRejection(t, err, ErrBadGoMod, "mod")
}

func TestFetchZipMismatch(t *testing.T) {
	e := newEnv(t)
	real := helloModule(t, "v1.0.0")
	served := newModule(t, "example.com/hello", "v1.0.0", map[string]string{
		"go.mod":   string(real.mod),
		"hello.go": "package hello\n\nfunc Hello() string { return \"pwned\" }\n",
	})
	e.db.set(real.m, real.record(t))
	e.proxy.add(t, served)

	_, err := e.fetch(e.fetcher(Options{}), real.m)
	if !IsSecurity(err) || !errors.Is(err, ErrMismatch) || IsTransient(err) || IsNotFound(err) {
		t.Fatalf("want a security error, got %v", err)
	}
	msg := err.Error()
	for _, s := range []string{"example.com/hello@v1.0.0: checksum-db: SECURITY ERROR", "zip " + served.zipHash(t), real.zipHash(t), testDBName, e.proxy.srv.URL} {
		if !strings.Contains(msg, s) {
			t.Errorf("error does not name %q: %s", s, msg)
		}
	}
	t.Log(msg)
	if left := e.tempFiles(); len(left) > 0 {
		t.Errorf("left in TempDir: %q", left)
	}
}

func TestFetchGoModMismatch(t *testing.T) {
	e := newEnv(t)
	real := helloModule(t, "v1.0.0")
	e.db.set(real.m, real.record(t))
	served := *real
	served.mod = []byte("module example.com/hello\n\ngo 1.21\n\nrequire example.com/evil v1.0.0\n")
	e.proxy.add(t, &served)

	_, err := e.fetch(e.fetcher(Options{}), real.m)
	if !IsSecurity(err) || !errors.Is(err, ErrMismatch) {
		t.Fatalf("want a security error, got %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "go.mod "+served.modHash(t)) || !strings.Contains(msg, real.modHash(t)) {
		t.Errorf("error does not name both go.mod hashes: %s", msg)
	}
}

// The database vouches for both files, but the .mod is not the zip's
// go.mod: a rejection, not tampering.
func TestFetchModDiffersFromZip(t *testing.T) {
	e := newEnv(t)
	tm := helloModule(t, "v1.0.0")
	tm.mod = []byte("module example.com/hello\n\ngo 1.22\n")
	e.publish(tm)
	_, err := e.fetch(e.fetcher(Options{}), tm.m)
	wantRejection(t, err, ErrBadGoMod, "mod")
	if !strings.Contains(err.Error(), "differs from the go.mod in the zip") {
		t.Errorf("error = %v", err)
	}
}

func TestFetchWrongModulePath(t *testing.T) {
	e := newEnv(t)
	tm := newModule(t, "example.com/hello", "v1.0.0", map[string]string{
		"go.mod":   "module example.com/other\n",
		"hello.go": "package hello\n",
	})
	e.publish(tm)
	_, err := e.fetch(e.fetcher(Options{}), tm.m)
	wantRejection(t, err, ErrBadGoMod, "mod")
	if !strings.Contains(err.Error(), `"example.com/other"`) {
		t.Errorf("error = %v", err)
	}
}

func TestFetchNotInDB(t *testing.T) {
	e := newEnv(t)
	tm := helloModule(t, "v1.0.0")
	e.proxy.add(t, tm)
	_, err := e.fetch(e.fetcher(Options{}), tm.m)
	wantRejection(t, err, ErrNotInDB, "checksum-db")
	if left := e.tempFiles(); len(left) > 0 {
		t.Errorf("left in TempDir: %q", left)
	}
}

// How failures of the checksum database are classified.
func TestFetchDBErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dbErr     error
		security  bool
		transient bool
		sentinel  error
	}{
		{"security", fmt.Errorf("%w: sum.example.test: fork", depsum.ErrSecurity), true, false, depsum.ErrSecurity},
		{"unavailable", fmt.Errorf("%w: sum.example.test: 503", depsum.ErrUnavailable), false, true, ErrUnavailable},
		{"unclassified", errors.New("something odd"), false, true, ErrUnavailable},
		{"not found", fmt.Errorf("lookup: %w", os.ErrNotExist), false, false, ErrNotInDB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tm := helloModule(t, "v1.0.0")
			e.proxy.add(t, tm)
			f := e.fetcher(Options{DB: depsum.DBFunc(func(context.Context, module.Version) ([]string, error) { return nil, tc.dbErr })})
			_, err := e.fetch(f, tm.m)
			if IsSecurity(err) != tc.security || IsTransient(err) != tc.transient || IsNotFound(err) || !errors.Is(err, tc.sentinel) {
				t.Fatalf("security %v transient %v notfound %v: %v", IsSecurity(err), IsTransient(err), IsNotFound(err), err)
			}
			if !strings.Contains(err.Error(), "checksum-db") {
				t.Errorf("error = %v", err)
			}
		})
	}
}

// The real SumDB over HTTP answering 500: transient.
func TestFetchDBUnavailable(t *testing.T) {
	e := newEnv(t)
	tm := helloModule(t, "v1.0.0")
	e.publish(tm)
	fail := func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return true
	}
	e.db.server.Intercept(fail)
	_, err := e.fetch(e.fetcher(Options{}), tm.m)
	if !IsTransient(err) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("want transient, got %v", err)
	}
}

func TestFetchNotFound(t *testing.T) {
	e := newEnv(t)
	m := module.Version{Path: "example.com/absent", Version: "v1.0.0"}
	_, err := e.fetch(e.fetcher(Options{}), m)
	if !IsNotFound(err) || IsTransient(err) || IsSecurity(err) {
		t.Fatalf("want not found, got %v", err)
	}
	if !strings.Contains(err.Error(), "example.com/absent@v1.0.0: info: GET "+e.proxy.srv.URL) || !strings.Contains(err.Error(), "404") {
		t.Errorf("error = %v", err)
	}
	if n := e.db.lookups(); n != 0 {
		t.Errorf("%d database lookups for a version no proxy has", n)
	}
}

func TestFetchTooLarge(t *testing.T) {
	chunked := func(w http.ResponseWriter, r *http.Request, data []byte) {
		// Flushing before the end means no Content-Length: only the
		// bounded read can catch the size.
		w.Write(data[:1])
		w.(http.Flusher).Flush()
		w.Write(data[1:])
	}
	for _, tc := range []struct {
		name  string
		o     Options
		check string
		fault func(tm *testModule) func(http.ResponseWriter, *http.Request) bool
	}{
		{"zip", Options{MaxZipSize: 100}, "zip", nil},
		{"info", Options{MaxInfoSize: 10}, "info", nil},
		{"mod", Options{MaxModSize: 10}, "mod", nil},
		{"zip chunked", Options{MaxZipSize: 100}, "zip", func(tm *testModule) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.HasSuffix(r.URL.Path, ".zip") {
					return false
				}
				chunked(w, r, tm.zip)
				return true
			}
		}},
		{"info chunked", Options{MaxInfoSize: 10}, "info", func(tm *testModule) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.HasSuffix(r.URL.Path, ".info") {
					return false
				}
				chunked(w, r, tm.info)
				return true
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tm := helloModule(t, "v1.0.0")
			e.publish(tm)
			if tc.fault != nil {
				e.proxy.setFault(tc.fault(tm))
			}
			_, err := e.fetch(e.fetcher(tc.o), tm.m)
			wantRejection(t, err, ErrTooLarge, tc.check)
			if left := e.tempFiles(); len(left) > 0 {
				t.Errorf("left in TempDir: %q", left)
			}
		})
	}
}

func TestFetchBadZip(t *testing.T) {
	m := module.Version{Path: "example.com/bad", Version: "v1.0.0"}
	mod := "module example.com/bad\n"
	badZip := func(t *testing.T) *testModule {
		return &testModule{m: m, info: infoJSON(m.Version), mod: []byte(mod), zip: rawZip(t, map[string]string{
			"example.com/bad@v1.0.0/go.mod":           mod,
			"example.com/bad@v1.0.0/../escape.go":     "package escape\n",
			"example.com/other@v1.0.0/elsewhere.go":   "package elsewhere\n",
			"example.com/bad@v1.0.0/ok.go":            "package bad\n",
			"example.com/bad@v1.0.0/vendor/../x/x.go": "package x\n",
		})}
	}

	t.Run("as recorded", func(t *testing.T) {
		// The database vouches for the zip, but CheckZip refuses it.
		e := newEnv(t)
		tm := badZip(t)
		e.publish(tm)
		_, err := e.fetch(e.fetcher(Options{}), m)
		wantRejection(t, err, ErrBadZip, "zip")
		if !strings.Contains(err.Error(), "escape.go") {
			t.Errorf("error does not name the bad file: %v", err)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		// A bad zip that is also not the recorded one: tampering first.
		e := newEnv(t)
		good := newModule(t, m.Path, m.Version, map[string]string{"go.mod": mod, "ok.go": "package bad\n"})
		e.db.set(m, good.record(t))
		e.proxy.add(t, badZip(t))
		_, err := e.fetch(e.fetcher(Options{}), m)
		if !IsSecurity(err) {
			t.Fatalf("want a security error, got %v", err)
		}
	})
	t.Run("not a zip", func(t *testing.T) {
		e := newEnv(t)
		good := newModule(t, m.Path, m.Version, map[string]string{"go.mod": mod, "ok.go": "package bad\n"})
		e.db.set(m, good.record(t))
		tm := *good
		tm.zip = []byte("<html>hello</html>")
		e.proxy.add(t, &tm)
		_, err := e.fetch(e.fetcher(Options{}), m)
		wantRejection(t, err, ErrBadZip, "zip")
	})
}

func TestFetchInvalid(t *testing.T) {
	e := newEnv(t)
	f := e.fetcher(Options{})
	for _, m := range []module.Version{
		{Path: "example.com/m", Version: "v1.2"},
		{Path: "example.com/m", Version: "v1.0.0+build"},
		{Path: "example.com/m", Version: "latest"},
		{Path: "example.com/m", Version: "master"},
		{Path: "example.com/m", Version: ""},
		{Path: "example.com/m", Version: "v2.0.0"},
		{Path: "example.com/m/v2", Version: "v1.0.0"},
		{Path: "Example.com/m", Version: "v1.0.0"},
		{Path: "example.com/../m", Version: "v1.0.0"},
		{Path: "example.com/m\nsecond line", Version: "v1.0.0"},
		{Path: "", Version: "v1.0.0"},
		{Path: "example.com/m", Version: "v1.0.0/go.mod"},
		{Path: "example.com/m", Version: "v1.0.0+incompatible"},
		{Path: "example.com/m/v2", Version: "v2.0.0+incompatible"},
		{Path: "gopkg.in/yaml.v3", Version: "v3.0.0+incompatible"},
	} {
		_, err := e.fetch(f, m)
		if !errors.Is(err, ErrInvalid) || IsTransient(err) || IsNotFound(err) || IsSecurity(err) {
			t.Errorf("%q: want ErrInvalid, got %v", m, err)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: multi-line error %q", m, err)
		}
		t.Logf("%q: %v", m, err)
	}
	if n := e.proxy.count(""); n != 0 {
		t.Errorf("%d requests to the proxy", n)
	}
	if n := e.db.lookups(); n != 0 {
		t.Errorf("%d lookups in the database", n)
	}
}

func TestNewErrors(t *testing.T) {
	db := depsum.DBFunc(func(context.Context, module.Version) ([]string, error) { return nil, nil })
	for _, o := range []Options{
		{},
		{DB: db, GOPROXY: "off"},
		{DB: db, TempDir: "/nonexistent/dir"},
		{DB: db, MaxZipSize: 1 << 40},
	} {
		if _, err := New(o); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: want ErrConfig, got %v", o, err)
		}
	}
}

// wantRejection checks that err is a rejection (neither security nor
// transient nor not-found) wrapping sentinel, from check.
func wantRejection(t *testing.T, err, sentinel error, check string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, sentinel) || IsSecurity(err) || IsTransient(err) || IsNotFound(err) {
		t.Fatalf("want a rejection wrapping %q, got %v", sentinel, err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Check != check {
		t.Errorf("want check %q: %v", check, err)
	}
	t.Log(err)
}
