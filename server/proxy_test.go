package server

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/store/storetest"
	"golang.org/x/mod/module"
)

// fixture is a store with a few published versions and the leftovers of an
// interrupted publish.
type fixture struct {
	store    *store.Dir
	versions map[module.Version]*store.Version
	secret   string // a file beside the store root, which must never be served
}

const secretText = "outside-the-store-secret"

func newFixture(t testing.TB) *fixture {
	t.Helper()
	base := t.TempDir()
	d, err := store.Open(filepath.Join(base, "store"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: d, versions: make(map[module.Version]*store.Version), secret: filepath.Join(base, "secret")}
	if err := os.WriteFile(f.secret, []byte(secretText), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, m := range []module.Version{
		{Path: "example.com/hello", Version: "v1.0.0"},
		{Path: "example.com/hello", Version: "v1.1.0"},
		{Path: "example.com/hello", Version: "v1.2.0-rc.1"},
		{Path: "example.com/Azure/hello", Version: "v1.0.0-RC1"},
	} {
		v := storetest.Version(t, m, map[string]string{
			"go.mod":     "module " + m.Path + "\n\ngo 1.21\n",
			"hello.go":   "package hello\n\n// Version is the module version.\nconst Version = \"" + m.Version + "\"\n",
			"sub/sub.go": "package sub\n",
		})
		if m.Version == "v1.1.0" {
			v.Docs = map[string][]byte{
				store.DocSPDX:       []byte(`{"spdxVersion":"SPDX-2.3"}`),
				store.DocSPDXSig:    []byte("MEUCIQ=="),
				store.DocSPDXBundle: []byte(`{"bundle":1}`),
				store.DocInToto:     []byte(`{"payloadType":"application/vnd.in-toto+json"}` + "\n"),
				store.DocVerdict:    []byte(`{"verdict":"admit"}`),
			}
		}
		if _, err := d.Publish(context.Background(), v); err != nil {
			t.Fatal(err)
		}
		f.versions[m] = v
	}
	// What an interrupted publish of v1.9.0 leaves: everything but .info.
	dir := filepath.Join(d.Root(), "example.com", "hello", "@v")
	for _, name := range []string{"v1.9.0.zip", "v1.9.0.ziphash", "v1.9.0.mod", "v1.9.0.spdx.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("leftover"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestProxyResponses(t *testing.T) {
	f := newFixture(t)
	h := NewProxy(f.store, nil)
	v110 := f.versions[module.Version{Path: "example.com/hello", Version: "v1.1.0"}]
	zip110, _ := os.ReadFile(v110.ZipFile)
	const (
		text      = "text/plain; charset=utf-8"
		json      = "application/json"
		immutable = "public, max-age=31536000, immutable"
	)
	for _, tc := range []struct {
		method, path string
		status       int
		ctype, cache string
		body         string // checked when not empty
	}{
		{"GET", "/example.com/hello/@v/list", 200, text, "no-cache", "v1.0.0\nv1.1.0\nv1.2.0-rc.1\n"},
		{"HEAD", "/example.com/hello/@v/list", 200, text, "no-cache", ""},
		{"GET", "/example.com/hello/@latest", 200, json, "no-cache", string(v110.Info)},
		{"GET", "/example.com/!azure/hello/@latest", 200, json, "no-cache", `{"Version":"v1.0.0-RC1","Time":"2024-01-02T03:04:05Z"}`},
		{"GET", "/example.com/!azure/hello/@v/list", 200, text, "no-cache", "v1.0.0-RC1\n"},
		{"GET", "/example.com/hello/@v/v1.1.0.info", 200, json, immutable, string(v110.Info)},
		{"GET", "/example.com/hello/@v/v1.1.0.mod", 200, text, immutable, string(v110.Mod)},
		{"GET", "/example.com/hello/@v/v1.1.0.zip", 200, "application/zip", immutable, string(zip110)},
		{"HEAD", "/example.com/hello/@v/v1.1.0.zip", 200, "application/zip", immutable, ""},
		{"GET", "/example.com/hello/@v/v1.1.0.spdx.json", 200, json, immutable, `{"spdxVersion":"SPDX-2.3"}`},
		{"GET", "/example.com/hello/@v/v1.1.0.spdx.json.sig", 200, text, immutable, "MEUCIQ=="},
		{"GET", "/example.com/hello/@v/v1.1.0.spdx.json.bundle", 200, json, immutable, `{"bundle":1}`},
		{"GET", "/example.com/hello/@v/v1.1.0.intoto.jsonl", 200, "application/x-ndjson", immutable, ""},
		{"GET", "/example.com/!azure/hello/@v/v1.0.0-!r!c1.info", 200, json, immutable, ""},

		// Not here: 404, which tells the go command to try elsewhere.
		{"GET", "/example.com/hello/@v/v1.0.0.spdx.json", 404, text, "no-store", ""},    // no such document
		{"GET", "/example.com/hello/@v/v1.1.0.ziphash", 404, text, "no-store", ""},      // internal
		{"GET", "/example.com/hello/@v/v1.1.0.verdict.json", 404, text, "no-store", ""}, // internal
		{"GET", "/example.com/hello/@v/v1.9.0.info", 404, text, "no-store", ""},         // interrupted publish
		{"GET", "/example.com/hello/@v/v1.9.0.mod", 404, text, "no-store", ""},
		{"GET", "/example.com/hello/@v/v1.9.0.zip", 404, text, "no-store", ""},
		{"GET", "/example.com/hello/@v/v1.9.0.spdx.json", 404, text, "no-store", ""},
		{"GET", "/example.com/hello/@v/v1.3.0.info", 404, text, "no-store", "not found: example.com/hello@v1.3.0 is not published here\n"},
		{"GET", "/example.com/other/@v/list", 404, text, "no-store", ""},
		{"GET", "/example.com/other/@latest", 404, text, "no-store", ""},
		{"GET", "/example.com/hello/@v/v1.1.info", 404, text, "no-store", ""},         // query, not canonical
		{"GET", "/example.com/hello/@v/master.info", 404, text, "no-store", ""},       // branch query
		{"GET", "/example.com/hello/@v/v1.1.0+build.info", 404, text, "no-store", ""}, // not canonical
		{"GET", "/example.com/hello/v2/@v/v1.1.0.info", 404, text, "no-store", ""},    // major mismatch
		{"GET", "/example.com/hello/@v/v1.1.0.exe", 404, text, "no-store", ""},        // unknown suffix
		{"GET", "/example.com/hello/@v/list.info", 404, text, "no-store", ""},
		{"GET", "/example.com/hello/@v/v2.0.0.info", 404, text, "no-store", "not found: example.com/hello@v2.0.0: invalid version: should be v0 or v1, not v2\n"},
		{"GET", "/", 404, text, "no-store", ""},
		{"GET", "/@v/list", 404, text, "no-store", ""}, // no module path: not an endpoint
		{"GET", "/example.com/hello/@v", 404, text, "no-store", ""},
		{"GET", "/example.com/hello", 404, text, "no-store", ""},
		{"GET", "/.modgate.lock", 404, text, "no-store", ""},
		{"GET", "/sumdb/sum.golang.org/supported", 404, text, "no-store", ""},
		{"GET", "/example.com/hello/@v/v1.1.0.info/", 400, text, "no-store", ""},

		// Malformed: 400; no go command sends these.
		{"GET", "/example.com/Hello/@v/list", 400, text, "no-store", ""},            // upper case is escaped
		{"GET", "/example.com/!!hello/@v/list", 400, text, "no-store", ""},          // bad escape
		{"GET", "/example.com/hello/@v/v1.0.0-RC1.info", 400, text, "no-store", ""}, // upper case is escaped
		{"GET", "/example.com/../../secret/@v/list", 400, text, "no-store", ""},
		{"GET", "/example.com/hello/../../../secret", 400, text, "no-store", ""},
		{"GET", "/example.com//hello/@v/list", 400, text, "no-store", ""},
		{"GET", "/example.com/./hello/@v/list", 400, text, "no-store", ""},
		{"GET", "/example.com/hello/@v/", 400, text, "no-store", ""},
		{"GET", "/example.com/.hidden/@v/list", 400, text, "no-store", ""},
		{"GET", "/example.com/hello/@v/v1.0.0\\..info", 400, text, "no-store", ""},
		{"GET", "/example.com/hello/@v/v1.0.0\x00.info", 400, text, "no-store", ""},
		{"GET", "/" + strings.Repeat("a", 5000) + ".com/@v/list", 400, text, "no-store", ""},

		{"POST", "/example.com/hello/@v/list", 405, text, "no-store", ""},
		{"PUT", "/example.com/hello/@v/v1.1.0.zip", 405, text, "no-store", ""},
		{"DELETE", "/example.com/hello/@v/v1.1.0.info", 405, text, "no-store", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/", nil)
			r.URL.Path = tc.path // as the server decoded it, ".." and all
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			res := w.Result()
			body := w.Body.String()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", res.StatusCode, tc.status, body)
			}
			if got := res.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got := res.Header.Get("Cache-Control"); got != tc.cache {
				t.Errorf("Cache-Control %q, want %q", got, tc.cache)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if tc.status == 405 && res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", res.Header.Get("Allow"))
			}
			etag := res.Header.Get("ETag")
			if (tc.status == 200) != (etag != "") {
				t.Errorf("ETag %q with status %d", etag, tc.status)
			}
			if tc.method == "HEAD" && body != "" {
				t.Errorf("HEAD answered a body")
			}
			if tc.body != "" && body != tc.body {
				t.Errorf("body %q, want %q", truncate(body), truncate(tc.body))
			}
			if strings.Contains(body, secretText) || strings.Contains(body, "leftover") || strings.Contains(body, f.store.Root()) {
				t.Errorf("body leaks: %q", truncate(body))
			}
			if tc.status == 200 && tc.method == "GET" {
				checkConditional(t, h, tc.path, etag)
			}
		})
	}
}

// checkConditional: the ETag makes a repeated request a 304.
func checkConditional(t *testing.T, h http.Handler, path, etag string) {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	r.URL.Path = path
	r.Header.Set("If-None-Match", etag)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("If-None-Match %s: status %d, body %d bytes; want 304, empty", etag, w.Code, w.Body.Len())
	}
}

func TestProxyZipRangeAndETag(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(NewProxy(f.store, nil))
	defer srv.Close()
	v := f.versions[module.Version{Path: "example.com/hello", Version: "v1.0.0"}]
	zip, _ := os.ReadFile(v.ZipFile)

	req, _ := http.NewRequest("GET", srv.URL+"/example.com/hello/@v/v1.0.0.zip", nil)
	req.Header.Set("Range", "bytes=0-3")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got bytes.Buffer
	got.ReadFrom(res.Body)
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(got.Bytes(), zip[:4]) {
		t.Errorf("range request: %d %q, want 206 %q", res.StatusCode, got.Bytes(), zip[:4])
	}
	if want := `"` + v.ZipHash + `"`; res.Header.Get("ETag") != want {
		t.Errorf("zip ETag %q, want %q (its h1: hash)", res.Header.Get("ETag"), want)
	}
}

func TestLatest(t *testing.T) {
	for _, tc := range []struct {
		list []string
		want string
	}{
		{nil, ""},
		{[]string{"v1.0.0-rc.1"}, "v1.0.0-rc.1"},
		{[]string{"v1.0.0", "v1.1.0-rc.1"}, "v1.0.0"},
		{[]string{"v0.1.0", "v1.0.0", "v1.1.0"}, "v1.1.0"},
		{[]string{"v1.0.0-a", "v1.0.0-b"}, "v1.0.0-b"},
	} {
		if got := latest(tc.list); got != tc.want {
			t.Errorf("latest(%q) = %q, want %q", tc.list, got, tc.want)
		}
	}
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// TestProxyBrokenStore: a published version missing a file is a server
// error, logged, and never a 404 that would send the go command elsewhere.
func TestProxyBrokenStore(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	h := NewProxy(f.store, slog.New(slog.NewTextHandler(&logs, nil)))
	dir := filepath.Join(f.store.Root(), "example.com", "hello", "@v")
	for _, name := range []string{"v1.0.0.ziphash", "v1.0.0.mod"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{"/example.com/hello/@v/v1.0.0.zip", "/example.com/hello/@v/v1.0.0.mod"} {
		r := httptest.NewRequest("GET", path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusInternalServerError {
			t.Errorf("GET %s: status %d, want 500", path, w.Code)
		}
		if strings.Contains(w.Body.String(), f.store.Root()) {
			t.Errorf("GET %s: body names store files: %q", path, w.Body.String())
		}
	}
	if !strings.Contains(logs.String(), "v1.0.0.ziphash") {
		t.Errorf("store error not logged: %q", logs.String())
	}
}
