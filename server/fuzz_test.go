package server

import (
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"
)

// FuzzProxyPath: the URL path parser never panics, accepts only the one
// canonical spelling of a module file, and the handler never answers with
// anything but files of published versions.
func FuzzProxyPath(f *testing.F) {
	for _, s := range []string{
		"/example.com/hello/@v/list",
		"/example.com/hello/@latest",
		"/example.com/hello/@v/v1.1.0.info",
		"/example.com/hello/@v/v1.1.0.zip",
		"/example.com/hello/@v/v1.1.0.spdx.json.sig",
		"/example.com/hello/@v/v1.1.0.ziphash",
		"/example.com/hello/@v/v1.9.0.mod",
		"/example.com/!azure/hello/@v/v1.0.0-!r!c1.info",
		"/example.com/../secret",
		"/example.com/hello/@v/../../../secret",
		"/example.com/hello/@v/v1.0.0/../../@v/list",
		"/example.com//hello/@v/list",
		"/.modgate.lock",
		"/example.com/hello/@v/.tmp-123",
		"/example.com/hello/@v/v1.0.0-%2e%2e.info",
		"/example.com/hello/@v/v1.0.0\\..\\x.info",
		"/gopkg.in/yaml.v2/@v/v2.4.0.info",
		"/example.com/hello/v2/@v/v2.0.0+incompatible.mod",
		"",
		"/",
		"//",
	} {
		f.Add(s)
	}
	fx := newFixture(f)
	h := NewProxy(fx.store, nil)
	allowed := servable(f, fx.store.Root())

	f.Fuzz(func(t *testing.T, p string) {
		if req, rerr := parsePath(p); rerr != nil {
			if rerr.status != 400 && rerr.status != 404 {
				t.Fatalf("parsePath(%q): status %d", p, rerr.status)
			}
		} else {
			checkCanonical(t, p, req)
		}

		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = p
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200:
			if !allowed[w.Body.String()] {
				t.Fatalf("GET %q served %q, which is no published file", p, truncate(w.Body.String()))
			}
		case 400, 404:
		default:
			t.Fatalf("GET %q: status %d", p, w.Code)
		}
	})
}

// checkCanonical: an accepted path is exactly what module.EscapePath and
// EscapeVersion make of what it names, so the store opens only the file
// that the go command would read, under the root.
func checkCanonical(t *testing.T, p string, req request) {
	esc, err := module.EscapePath(req.mod.Path)
	if err != nil {
		t.Fatalf("parsePath(%q) accepted module path %q: %v", p, req.mod.Path, err)
	}
	for _, elem := range strings.Split(esc, "/") {
		if elem == "" || strings.HasPrefix(elem, ".") {
			t.Fatalf("parsePath(%q): escaped path %q has element %q", p, esc, elem)
		}
	}
	var want string
	switch req.kind {
	case kindList:
		want = "/" + esc + "/@v/list"
	case kindLatest:
		want = "/" + esc + "/@latest"
	default:
		if module.Check(req.mod.Path, req.mod.Version) != nil || module.CanonicalVersion(req.mod.Version) != req.mod.Version {
			t.Fatalf("parsePath(%q) accepted %v", p, req.mod)
		}
		ev, err := module.EscapeVersion(req.mod.Version)
		if err != nil {
			t.Fatal(err)
		}
		want = "/" + esc + "/@v/" + ev + req.suffix
	}
	if p != want {
		t.Fatalf("parsePath(%q) = %+v, whose canonical path is %q", p, req, want)
	}
	root := "/store"
	if joined := filepath.Join(root, filepath.FromSlash(esc)); !strings.HasPrefix(joined, root+"/") {
		t.Fatalf("parsePath(%q): %q leaves the root", p, joined)
	}
}

// servable returns the content of every file under root that the proxy may
// serve: the files of published versions, except the internal ones, and the
// lists (whose content is also what the proxy answers for them).
func servable(tb testing.TB, root string) map[string]bool {
	ok := make(map[string]bool)
	err := filepath.WalkDir(root, func(name string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		base := e.Name()
		if strings.HasPrefix(base, ".") || strings.HasPrefix(base, "v1.9.0.") ||
			strings.HasSuffix(base, ".ziphash") || strings.HasSuffix(base, ".verdict.json") {
			return nil
		}
		data, err := os.ReadFile(name)
		ok[string(data)] = true
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return ok
}
