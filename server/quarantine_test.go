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
