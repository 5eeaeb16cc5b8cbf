package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modgate/modgate/store"
	"golang.org/x/mod/module"
)

// TestProxyQuarantine: a quarantined version leaves the list and @latest,
// and every one of its files is a 403 that names the reason; restoring it
// brings it back.
func TestProxyQuarantine(t *testing.T) {
	f := newFixture(t)
	h := NewProxy(f.store, nil)
	get := func(path string) (int, string, http.Header) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		body, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, string(body), rec.Header()
	}
	m := module.Version{Path: "example.com/hello", Version: "v1.1.0"}
	ctx := context.Background()
	if err := f.store.SetQuarantine(ctx, m, store.Quarantine{Reason: "signer key revoked\nsecond line"}); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{".info", ".mod", ".zip", store.DocSPDX, store.DocInToto} {
		code, body, hdr := get("/example.com/hello/@v/v1.1.0" + suffix)
		if code != http.StatusForbidden || !strings.Contains(body, "quarantined by modgate: signer key revoked second line") {
			t.Errorf("%s: %d %q, want 403 with the reason on one line", suffix, code, body)
		}
		if hdr.Get("Cache-Control") != cacheNone {
			t.Errorf("%s: Cache-Control %q", suffix, hdr.Get("Cache-Control"))
		}
	}
	if code, body, _ := get("/example.com/hello/@v/list"); code != 200 || body != "v1.0.0\nv1.2.0-rc.1\n" {
		t.Errorf("list: %d %q", code, body)
	}
	if code, body, _ := get("/example.com/hello/@latest"); code != 200 || !strings.Contains(body, `"v1.0.0"`) {
		t.Errorf("@latest: %d %q, want v1.0.0", code, body)
	}
	if code, _, _ := get("/example.com/hello/@v/v1.0.0.zip"); code != 200 {
		t.Errorf("other version: %d", code)
	}

	if _, err := f.store.ClearQuarantine(ctx, m); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get("/example.com/hello/@v/v1.1.0.zip"); code != 200 {
		t.Errorf("restored zip: %d", code)
	}
	if code, body, _ := get("/example.com/hello/@latest"); code != 200 || !strings.Contains(body, `"v1.1.0"`) {
		t.Errorf("restored @latest: %d %q", code, body)
	}
	// The latest re-verification summary is served, and revalidated.
	if code, _, _ := get("/example.com/hello/@v/v1.1.0" + store.StateReverified); code != 404 {
		t.Errorf("reverified summary before any run: %d", code)
	}
	if err := f.store.WriteReverified(ctx, m, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if code, body, hdr := get("/example.com/hello/@v/v1.1.0" + store.StateReverified); code != 200 || body != "{}\n" || hdr.Get("Cache-Control") != cacheRevalid {
		t.Errorf("reverified summary: %d %q %q", code, body, hdr.Get("Cache-Control"))
	}
}

func TestLatestUnsorted(t *testing.T) {
	for _, tc := range []struct {
		vs   []string
		want string
	}{
		{nil, ""},
		{[]string{"v1.10.0", "v1.2.0", "v1.11.0-rc.1"}, "v1.10.0"},
		{[]string{"v0.2.0-b", "v0.10.0-a"}, "v0.10.0-a"},
	} {
		if got := Latest(tc.vs); got != tc.want {
			t.Errorf("Latest(%q) = %q, want %q", tc.vs, got, tc.want)
		}
	}
}

// upstreamLists is a Missing whose upstream lists vs for every module and
// admits nothing.
type upstreamLists struct{ vs []string }

func (u upstreamLists) List(context.Context, string) ([]string, error) {
	return append([]string(nil), u.vs...), nil
}

func (u upstreamLists) Version(_ context.Context, m module.Version) error {
	return &Refusal{Status: http.StatusForbidden, Msg: "forbidden: " + m.String() + " is not admitted"}
}

// TestProxyAllQuarantined: a module whose every published version is
// quarantined is a 403 naming the reason in its list and @latest, not a
// 404 (which sends the go command on to the next proxy in GOPROXY); an
// upstream's list of it leaves the quarantined versions out.
func TestProxyAllQuarantined(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, v := range []string{"v1.0.0", "v1.1.0", "v1.2.0-rc.1"} {
		if err := f.store.SetQuarantine(ctx, module.Version{Path: "example.com/hello", Version: v}, store.Quarantine{Reason: "signer " + v + " revoked"}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(h http.Handler, path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	const want = "forbidden: every version of module example.com/hello published here is quarantined by modgate: v1.1.0: signer v1.1.0 revoked (and 2 more)\n"
	for name, h := range map[string]http.Handler{
		"no upstream":            NewProxy(f.store, nil),
		"upstream lists them":    New(f.store, Options{Missing: upstreamLists{[]string{"v1.0.0", "v1.1.0"}}}),
		"upstream lists nothing": New(f.store, Options{Missing: upstreamLists{}}),
	} {
		for _, p := range []string{"/example.com/hello/@v/list", "/example.com/hello/@latest"} {
			if code, body := get(h, p); code != http.StatusForbidden || body != want {
				t.Errorf("%s: %s: %d %q, want 403 %q", name, p, code, body, want)
			}
		}
		if code, _ := get(h, "/example.com/nothing/@v/list"); code == http.StatusForbidden {
			t.Errorf("%s: a module never published is %d", name, code)
		}
	}
	// Upstream has a version that is not quarantined: listed alone.
	h := New(f.store, Options{Missing: upstreamLists{[]string{"v1.0.0", "v1.1.0", "v1.3.0"}}})
	if code, body := get(h, "/example.com/hello/@v/list"); code != 200 || body != "v1.3.0\n" {
		t.Errorf("list with upstream: %d %q, want only v1.3.0", code, body)
	}
	// @latest takes it to the Missing, which refuses it here.
	if code, body := get(h, "/example.com/hello/@latest"); code != http.StatusForbidden || !strings.Contains(body, "v1.3.0 is not admitted") {
		t.Errorf("@latest with upstream: %d %q", code, body)
	}
}
