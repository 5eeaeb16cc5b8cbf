package depsum

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// testProxy is a GOPROXY that answers /sumdb/<name>/supported with status,
// and, when status is 200, proxies /sumdb/<name>/… to db.
type testProxy struct {
	srv    *httptest.Server
	probes atomic.Int64
}

func newTestProxy(t *testing.T, status int, db *testDB) *testProxy {
	p := &testProxy{}
	prefix := "/sumdb/" + testDBName
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == prefix+"/supported":
			p.probes.Add(1)
			w.WriteHeader(status)
		case status == http.StatusOK && db != nil && strings.HasPrefix(r.URL.Path, prefix+"/"):
			http.StripPrefix(prefix, db.srv.Config.Handler).ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func TestDiscover(t *testing.T) {
	_, vkey := testKey()
	ctx := context.Background()
	db := newTestDB(t, recordsFor(publicModules...))
	yes := newTestProxy(t, http.StatusOK, db)
	no := newTestProxy(t, http.StatusNotFound, nil)
	gone := newTestProxy(t, http.StatusGone, nil)
	broken := newTestProxy(t, http.StatusInternalServerError, nil)
	direct := "https://" + testDBName
	via := func(p *testProxy) string { return p.srv.URL + "/sumdb/" + testDBName }

	for _, tc := range []struct {
		name, goproxy, gosumdb string
		want                   string // URL, or "" for an error
		wantErr                error
	}{
		{"proxy supports it", yes.srv.URL, vkey, via(yes), nil},
		{"proxy with trailing slash", yes.srv.URL + "/,direct", vkey, via(yes), nil},
		{"404 then next proxy", no.srv.URL + "," + yes.srv.URL, vkey, via(yes), nil},
		{"410 then direct", gone.srv.URL + ",direct", vkey, direct, nil},
		{"404 and end of list", no.srv.URL, vkey, direct, nil},
		{"direct first", "direct," + yes.srv.URL, vkey, direct, nil},
		{"off", "off", vkey, direct, nil},
		{"file proxy skipped", "file:///srv/proxy," + yes.srv.URL, vkey, via(yes), nil},
		{"500 stops", broken.srv.URL + "," + yes.srv.URL, vkey, "", ErrUnavailable},
		{"500 with | falls back", broken.srv.URL + "|" + yes.srv.URL, vkey, via(yes), nil},
		{"500 with | then direct", broken.srv.URL + "|direct", vkey, direct, nil},
		{"500 with | then 404", broken.srv.URL + "|" + no.srv.URL, vkey, "", ErrUnavailable},
		{"explicit URL skips proxies", broken.srv.URL, vkey + " " + db.srv.URL, db.srv.URL, nil},
		{"GOSUMDB off", yes.srv.URL, "off", "", ErrConfig},
		{"bad key", yes.srv.URL, "sum.example.test+bad", "", ErrConfig},
		{"too many fields", yes.srv.URL, vkey + " a b", "", ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := Discover(ctx, tc.goproxy, tc.gosumdb, nil)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("want %v, got %v (%+v)", tc.wantErr, err, opts)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts.URL != tc.want || opts.Name != testDBName || opts.Key != vkey {
				t.Fatalf("got %+v, want URL %s", opts, tc.want)
			}
		})
	}
	if n := broken.probes.Load(); n != 4 {
		t.Errorf("the broken proxy was probed %d times, want 4 (not when GOSUMDB names a URL)", n)
	}

	// The discovered options work: a check through the proxy's /sumdb/.
	opts, err := Discover(ctx, no.srv.URL+","+yes.srv.URL, vkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.CacheDir = t.TempDir()
	sdb, err := NewSumDB(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkWith(t, sdb, "example.com/a@v1.0.0", "example.com/b@v1.2.0"); err != nil {
		t.Fatal(err)
	}
}

func TestDiscoverDefaults(t *testing.T) {
	ctx := context.Background()
	// sum.golang.org by name: the go command's built-in key. GOSUMDB with a
	// URL asks no proxy, so this needs no network.
	opts, err := Discover(ctx, "", "sum.golang.org https://sum.example.invalid", nil)
	if err != nil || opts.Key != SumGolangOrgKey || opts.Name != "sum.golang.org" || opts.URL != "https://sum.example.invalid" {
		t.Fatalf("%+v %v", opts, err)
	}
	opts, err = Discover(ctx, "off", "", nil)
	if err != nil || opts.Key != SumGolangOrgKey || opts.URL != "https://sum.golang.org" {
		t.Fatalf("%+v %v", opts, err)
	}
	opts, err = Discover(ctx, "off", "sum.golang.google.cn", nil)
	if err != nil || opts.Key != SumGolangOrgKey || opts.URL != "https://sum.golang.google.cn" {
		t.Fatalf("%+v %v", opts, err)
	}
	if _, err := Discover(ctx, "off", "sum.golang.org ftp://x", nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("ftp URL: %v", err)
	}
}
