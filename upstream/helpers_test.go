package upstream

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/modgate/modgate/internal/sumdbtest"
	"github.com/modgate/modgate/verifiers/depsum"
)

// testDBName is the name of the test checksum databases, and testKey
// their one key (so that two can disagree under the same name: a fork).
const testDBName = sumdbtest.Name

var testKey = sumdbtest.SharedKey

// testTime is the Time of every test version.
var testTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testModule is the files a proxy serves for one module version.
type testModule struct {
	m              module.Version
	info, mod, zip []byte
}

// newModule builds m's zip from files (name → content) with
// golang.org/x/mod/zip.Create, and its .mod as a proxy serves it: the
// go.mod among files, or for a module without one "module PATH\n".
func newModule(t testing.TB, path, vers string, files map[string]string) *testModule {
	t.Helper()
	m := module.Version{Path: path, Version: vers}
	var mf []modzip.File
	for name, content := range files {
		mf = append(mf, memFile{name, []byte(content)})
	}
	sort.Slice(mf, func(i, j int) bool { return mf[i].Path() < mf[j].Path() })
	var buf bytes.Buffer
	if err := modzip.Create(&buf, m, mf); err != nil {
		t.Fatal(err)
	}
	mod, ok := files["go.mod"]
	if !ok {
		mod = "module " + path + "\n"
	}
	return &testModule{m: m, info: infoJSON(vers), mod: []byte(mod), zip: buf.Bytes()}
}

func infoJSON(vers string) []byte {
	return fmt.Appendf(nil, `{"Version":%q,"Time":%q}`, vers, testTime.Format(time.RFC3339))
}

// helloModule is a small module with a go.mod.
func helloModule(t testing.TB, vers string) *testModule {
	return newModule(t, "example.com/hello", vers, map[string]string{
		"go.mod":   "module example.com/hello\n\ngo 1.21\n",
		"hello.go": "package hello\n\nfunc Hello() string { return \"hello " + vers + "\" }\n",
		"LICENSE":  "Public domain.\n",
	})
}

func (tm *testModule) zipHash(t testing.TB) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "m.zip")
	if err := os.WriteFile(f, tm.zip, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := dirhash.HashZip(f, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (tm *testModule) modHash(t testing.TB) string {
	t.Helper()
	h, err := hashGoMod(tm.mod)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// record is the version's go.sum lines, a checksum database record.
func (tm *testModule) record(t testing.TB) string {
	return fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", tm.m.Path, tm.m.Version, tm.zipHash(t), tm.m.Path, tm.m.Version, tm.modHash(t))
}

type memFile struct {
	path string
	data []byte
}

func (f memFile) Path() string                 { return f.path }
func (f memFile) Lstat() (fs.FileInfo, error)  { return memInfo{f}, nil }
func (f memFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

type memInfo struct{ f memFile }

func (i memInfo) Name() string       { return filepath.Base(i.f.path) }
func (i memInfo) Size() int64        { return int64(len(i.f.data)) }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return testTime }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

// rawZip writes a zip with exactly these entries, bypassing zip.Create's
// checks: what a hostile proxy could serve.
func rawZip(t testing.TB, entries map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fw, err := w.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(fw, entries[name])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testProxy serves a directory in the GOPROXY layout over HTTP, counting
// requests by path; fault, if set, sees each request first and answers it
// when it returns true.
type testProxy struct {
	dir   string
	srv   *httptest.Server
	fault atomic.Pointer[func(http.ResponseWriter, *http.Request) bool]

	mu   sync.Mutex
	hits map[string]int // URL path → requests
	auth []string       // "user:password" of requests with basic auth
}

func newTestProxy(t testing.TB) *testProxy {
	t.Helper()
	p := &testProxy{dir: t.TempDir(), hits: make(map[string]int)}
	files := http.FileServer(http.Dir(p.dir))
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.hits[r.URL.Path]++
		if u, pw, ok := r.BasicAuth(); ok {
			p.auth = append(p.auth, u+":"+pw)
		}
		p.mu.Unlock()
		if f := p.fault.Load(); f != nil && (*f)(w, r) {
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// add writes tm's files into the proxy's directory.
func (p *testProxy) add(t testing.TB, tm *testModule) {
	t.Helper()
	dir := p.versionDir(t, tm.m.Path)
	ev, err := module.EscapeVersion(tm.m.Version)
	if err != nil {
		t.Fatal(err)
	}
	for ext, data := range map[string][]byte{".info": tm.info, ".mod": tm.mod, ".zip": tm.zip} {
		if err := os.WriteFile(filepath.Join(dir, ev+ext), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// write writes one file of the layout, relative to the module's @v
// directory ("list", "v1.0.0.info") or, for "@latest", beside it.
func (p *testProxy) write(t testing.TB, path, name string, data []byte) {
	t.Helper()
	dir := p.versionDir(t, path)
	if name == "@latest" {
		dir = filepath.Dir(dir)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (p *testProxy) versionDir(t testing.TB, path string) string {
	t.Helper()
	ep, err := module.EscapePath(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(p.dir, filepath.FromSlash(ep), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (p *testProxy) setFault(f func(http.ResponseWriter, *http.Request) bool) {
	if f == nil {
		p.fault.Store(nil)
		return
	}
	p.fault.Store(&f)
}

// count is the number of requests whose path ends in suffix ("" for all).
func (p *testProxy) count(suffix string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for path, c := range p.hits {
		if strings.HasSuffix(path, suffix) {
			n += c
		}
	}
	return n
}

// testDB is a checksum database: sumdb.TestServer over HTTP, read through a
// depsum.SumDB, so that every record is proven with real tlog proofs.
type testDB struct {
	*depsum.SumDB
	server *sumdbtest.Server
}

func newTestDB(t testing.TB) *testDB {
	t.Helper()
	skey, vkey := testKey()
	db := &testDB{server: sumdbtest.New(skey, nil)}
	url := db.server.Serve(t)
	// Not t.TempDir: a lookup whose caller gave up finishes in the
	// background (see depsum.SumDB.Lookup) and may still write its cache.
	cache, err := os.MkdirTemp("", "upstream-sumdb-cache-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 100 {
			if os.RemoveAll(cache) == nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	db.SumDB, err = depsum.NewSumDB(depsum.SumDBOptions{
		Key:      vkey,
		URL:      url,
		CacheDir: cache,
		Logger:   discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// set records a version's go.sum lines; the database adds them to its log
// when first asked.
func (db *testDB) set(m module.Version, record string) { db.server.Set(m.String(), record) }

// lookups is the number of /lookup/ requests the database got.
func (db *testDB) lookups() int { return len(db.server.Lookups()) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// env is an upstream proxy and a checksum database.
type env struct {
	t     testing.TB
	proxy *testProxy
	db    *testDB
	tmp   string // the Fetcher's TempDir
}

func newEnv(t testing.TB) *env {
	return &env{t: t, proxy: newTestProxy(t), db: newTestDB(t), tmp: t.TempDir()}
}

// publish makes the proxy serve tm and the database hold its real hashes.
func (e *env) publish(tm *testModule) {
	e.proxy.add(e.t, tm)
	e.db.set(tm.m, tm.record(e.t))
}

// fetcher is a Fetcher on the environment; o's zero fields get test
// defaults (the proxy, the database, quick retries).
func (e *env) fetcher(o Options) *Fetcher {
	e.t.Helper()
	if o.GOPROXY == "" {
		o.GOPROXY = e.proxy.srv.URL
	}
	if o.DB == nil {
		o.DB = e.db
	}
	if o.TempDir == "" {
		o.TempDir = e.tmp
	}
	if o.Backoff == nil {
		o.Backoff = func(int) time.Duration { return time.Millisecond }
	}
	if o.Logger == nil {
		o.Logger = discard
	}
	f, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// tempFiles lists what is left in the Fetcher's TempDir.
func (e *env) tempFiles() []string {
	e.t.Helper()
	ents, err := os.ReadDir(e.tmp)
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	return names
}

// fetch is Fetch with a test timeout.
func (e *env) fetch(f *Fetcher, m module.Version) (*Module, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return f.Fetch(ctx, m)
}
