package depsum

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
)

var (
	modX = "example.com/x@v1.0.0"
	modY = "example.com/y@v1.0.0"
	modZ = "example.com/z@v1.0.0"
	modW = "example.com/w@v1.0.0"
)

// gosumFor is a go.mod requiring the given versions directly and its go.sum,
// built from the records the caller expects the database to hold.
func gosumFor(pvs ...string) (gomod, gosum string) {
	gomod = "module corp.example/app\n\ngo 1.22\n"
	for _, pv := range pvs {
		path, vers, _ := strings.Cut(pv, "@")
		gomod += "require " + path + " " + vers + "\n"
		gosum += sumLines(path, vers)
	}
	return gomod, gosum
}

func checkWith(t *testing.T, db DB, pvs ...string) error {
	t.Helper()
	gomod, gosum := gosumFor(pvs...)
	_, err := (&Checker{Public: db}).Check(context.Background(), mainModule, []byte(gomod), []byte(gosum))
	return err
}

// seeTree makes a SumDB in dir verify tree head of a (X and Y, in that order)
// and persist it, as a modgate process that then stops.
func seeTree(t *testing.T, dir string) *testDB {
	a := newTestDB(t, recordsFor(modX, modY), modX, modY)
	if err := checkWith(t, newTestSumDB(t, a.srv.URL, dir), modX, modY); err != nil {
		t.Fatal(err)
	}
	return a
}

func wantSecurity(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrSecurity) || !IsSecurity(err) || IsTransient(err) {
		t.Fatalf("want a security error, got IsSecurity=%v IsTransient=%v: %v", IsSecurity(err), IsTransient(err), err)
	}
	t.Logf("error: %v", err)
}

// TestFork: a database that, after a client verified one tree, presents a
// larger tree that does not extend it is caught, by a new SumDB sharing the
// cache directory (a restart), and again on every later lookup.
func TestFork(t *testing.T) {
	dir := t.TempDir()
	seeTree(t, dir)

	// Same name and key, a different record for X: a fork of the log.
	forked := recordsFor(modY, modZ)
	forked[modX] = strings.Replace(sumLines("example.com/x", "v1.0.0"), zipHash("example.com/x", "v1.0.0"), h1("evil"), 1)
	b := newTestDB(t, forked, modX, modY, modZ)

	var logs syncBuffer
	_, vkey := testKey()
	db, err := NewSumDB(SumDBOptions{Key: vkey, URL: b.srv.URL, CacheDir: dir,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	err = checkWith(t, db, modZ)
	wantSecurity(t, err)
	if l := logs.String(); !strings.Contains(l, "SECURITY ERROR") || !strings.Contains(l, "proof of misbehavior") {
		t.Errorf("proof not logged: %s", l)
	}
	if !strings.Contains(err.Error(), "example.com/z@v1.0.0") || !strings.Contains(err.Error(), "fork") {
		t.Errorf("message does not say what and why: %v", err)
	}
	// Retrying does not launder it.
	wantSecurity(t, checkWith(t, db, modZ))
	// The persisted head is still the one first verified.
	latest, _ := os.ReadFile(filepath.Join(dir, testDBName, "latest"))
	if !bytes.Contains(latest, []byte("\n2\n")) {
		t.Errorf("latest tree head was replaced: %q", latest)
	}
}

// TestRollback: a database presenting a smaller tree with another history
// (rebuilt from scratch) is caught too.
func TestRollback(t *testing.T) {
	dir := t.TempDir()
	seeTree(t, dir)
	c := newTestDB(t, recordsFor(modW), modW)
	wantSecurity(t, checkWith(t, newTestSumDB(t, c.srv.URL, dir), modW))
}

// TestStaleHead: a smaller tree that is a prefix of the one verified (a
// lagging mirror) is not misbehaviour; sumdb.Client accepts it, as the go
// command does, and checks the record against the larger tree it knows.
func TestStaleHead(t *testing.T) {
	dir := t.TempDir()
	seeTree(t, dir)
	if err := os.RemoveAll(filepath.Join(dir, testDBName, "lookup")); err != nil {
		t.Fatal(err)
	}
	stale := newTestDB(t, recordsFor(modX), modX) // tree of 1: a prefix of X, Y
	if err := checkWith(t, newTestSumDB(t, stale.srv.URL, dir), modX); err != nil {
		t.Fatal(err)
	}
	if stale.Requests() == 0 {
		t.Fatal("the stale server was not asked")
	}
}

// TestForgedRecord: a lookup answer whose record is not the one in the
// signed log fails verification: a security error, not a mismatch.
func TestForgedRecord(t *testing.T) {
	a := newTestDB(t, recordsFor(modX, modY), modX, modY)
	good, evil := zipHash("example.com/x", "v1.0.0"), h1("evil")
	a.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/lookup/") {
			return false
		}
		rec := httptest.NewRecorder()
		sumdb.NewServer(a.TS).ServeHTTP(rec, r)
		w.Write(bytes.Replace(rec.Body.Bytes(), []byte(good), []byte(evil), 1))
		return true
	})
	gomod, gosum := gosumFor(modX)
	gosum = strings.Replace(gosum, good, evil, 1) // go.sum agrees with the forgery
	_, err := (&Checker{Public: newTestSumDB(t, a.srv.URL, t.TempDir())}).Check(context.Background(), mainModule, []byte(gomod), []byte(gosum))
	wantSecurity(t, err)
	if !strings.Contains(err.Error(), "cannot authenticate") {
		t.Errorf("message: %v", err)
	}
}

// TestBadSignature: a tree head signed by another key (the wrong database,
// or a forgery) is refused as a security error.
func TestBadSignature(t *testing.T) {
	a := newTestDB(t, recordsFor(modX), modX)
	// The same database, known under a different key.
	_, other := otherKey()
	db, err := NewSumDB(SumDBOptions{Key: other, URL: a.srv.URL, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	wantSecurity(t, checkWith(t, db, modX))
}

var otherKey = sync.OnceValues(func() (string, string) {
	s, v, err := note.GenerateKey(rand.Reader, testDBName)
	if err != nil {
		panic(err)
	}
	return s, v
})

func TestSumDBLookupNotFound(t *testing.T) {
	a := newTestDB(t, recordsFor(modX))
	db := newTestSumDB(t, a.srv.URL, t.TempDir())
	_, err := db.Lookup(context.Background(), module.Version{Path: "example.com/none", Version: "v1.0.0"})
	if !errors.Is(err, fs.ErrNotExist) || IsTransient(err) || IsSecurity(err) {
		t.Fatalf("want fs.ErrNotExist, got %v", err)
	}
	lines, err := db.Lookup(context.Background(), module.Version{Path: "example.com/x", Version: "v1.0.0"})
	if err != nil || strings.Join(lines, "\n")+"\n" != sumLines("example.com/x", "v1.0.0") {
		t.Fatalf("lookup: %q, %v", lines, err)
	}
	if _, err := db.Lookup(context.Background(), module.Version{Path: "../x", Version: "v1.0.0"}); err == nil {
		t.Fatal("bad module path accepted")
	}
}

func TestSumDBOptions(t *testing.T) {
	_, vkey := testKey()
	for _, tc := range []struct {
		name string
		opts SumDBOptions
		want string
	}{
		{"no key", SumDBOptions{URL: "https://x", CacheDir: "d"}, "key"},
		{"name mismatch", SumDBOptions{Name: "sum.golang.org", Key: vkey, URL: "https://x", CacheDir: "d"}, "does not match"},
		{"no url", SumDBOptions{Key: vkey, CacheDir: "d"}, "url"},
		{"ftp url", SumDBOptions{Key: vkey, URL: "ftp://x", CacheDir: "d"}, "url"},
		{"no cache", SumDBOptions{Key: vkey, URL: "https://x"}, "cache dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSumDB(tc.opts)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want ErrConfig about %s, got %v", tc.want, err)
			}
		})
	}
	db, err := NewSumDB(SumDBOptions{Key: vkey, URL: "https://x/", CacheDir: "d"})
	if err != nil || db.Name() != testDBName || db.base != "https://x" {
		t.Fatalf("%v %v", db, err)
	}
}

// TestCredentialsRedacted: a proxy URL's credentials never reach a message.
func TestCredentialsRedacted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusBadGateway)
	}))
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "http://token123:secret456@", 1)
	db := newTestSumDB(t, u, t.TempDir())
	err := checkWith(t, db, modX)
	if !IsTransient(err) || strings.Contains(err.Error(), "secret456") || strings.Contains(err.Error(), "token123") {
		t.Fatalf("%v", err)
	}
}

func TestCacheDir(t *testing.T) {
	d := &cacheDir{root: t.TempDir()}
	for _, bad := range []string{"../x", "/etc/passwd", "a/../../b"} {
		if err := d.writeCache(bad, []byte("x")); err == nil {
			t.Errorf("writeCache(%q) accepted", bad)
		}
	}
	// A cache file a crash left empty is a miss.
	tile := "db.example/tile/8/0/000"
	if err := d.writeCache(tile, []byte("hashes")); err != nil {
		t.Fatal(err)
	}
	if data, err := d.readCache(tile); err != nil || string(data) != "hashes" {
		t.Fatalf("readCache: %q, %v", data, err)
	}
	if err := d.writeCache(tile, nil); err != nil {
		t.Fatal(err)
	}
	if data, err := d.readCache(tile); err == nil {
		t.Errorf("empty cache file read as %q", data)
	}
	f := "db.example/latest"
	if data, err := d.readConfig(f); err != nil || data != nil {
		t.Fatalf("empty config: %q, %v", data, err)
	}
	if err := d.writeConfig(f, nil, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := d.writeConfig(f, nil, []byte("two")); err != sumdb.ErrWriteConflict {
		t.Fatalf("stale old: want ErrWriteConflict, got %v", err)
	}
	if err := d.writeConfig(f, []byte("one"), []byte("two")); err != nil {
		t.Fatal(err)
	}
	if data, _ := d.readConfig(f); string(data) != "two" {
		t.Fatalf("got %q", data)
	}
	// Concurrent swaps: exactly one winner per old value.
	var wg sync.WaitGroup
	wins := make(chan string, 8)
	for i := range 8 {
		wg.Go(func() {
			v := []byte{'a' + byte(i)}
			if d.writeConfig(f, []byte("two"), v) == nil {
				wins <- string(v)
			}
		})
	}
	wg.Wait()
	close(wins)
	var got []string
	for w := range wins {
		got = append(got, w)
	}
	if data, _ := d.readConfig(f); len(got) != 1 || string(data) != got[0] {
		t.Fatalf("winners %v, file %q", got, data)
	}
	entries, _ := os.ReadDir(filepath.Join(d.root, "db.example"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestClientLivesWhileLookupsRepeat: a client answering the same lookups
// from memory is kept (a re-verification run looks up the same
// dependencies of every version); one that has loaded maxLoadsPerClient
// records and tiles is retired, and its successor still answers.
func TestClientLivesWhileLookupsRepeat(t *testing.T) {
	a := newTestDB(t, recordsFor(modX, modY, modZ), modX, modY, modZ)
	db := newTestSumDB(t, a.srv.URL, t.TempDir())
	ctx := context.Background()
	x := module.Version{Path: "example.com/x", Version: "v1.0.0"}
	if _, err := db.Lookup(ctx, x); err != nil {
		t.Fatal(err)
	}
	first := db.current()
	for range 1000 {
		if _, err := db.Lookup(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if db.current() != first {
		t.Fatal("1,000 repeated lookups retired the client")
	}
	defer func(n int64) { maxLoadsPerClient = n }(maxLoadsPerClient)
	maxLoadsPerClient = first.loads.Load() + 1
	for _, m := range []string{"example.com/y", "example.com/z"} {
		if _, err := db.Lookup(ctx, module.Version{Path: m, Version: "v1.0.0"}); err != nil {
			t.Fatal(err)
		}
	}
	if db.current() == first {
		t.Fatalf("the client loaded %d records and tiles (bound %d) and was kept", first.loads.Load(), maxLoadsPerClient)
	}
	if lines, err := db.Lookup(ctx, x); err != nil || len(lines) != 2 {
		t.Fatalf("after the client was retired: %q, %v", lines, err)
	}
}

// TestAnswersKept: a client's answer is given again without asking it (as
// it would from its own memory), a caller changing what it got changes no
// later answer, and a fresh client starts without them, under another
// Epoch (as does another SumDB).
func TestAnswersKept(t *testing.T) {
	a := newTestDB(t, recordsFor(modX, modY), modX, modY)
	db := newTestSumDB(t, a.srv.URL, t.TempDir())
	ctx := context.Background()
	x := module.Version{Path: "example.com/x", Version: "v1.0.0"}
	first, err := db.Lookup(ctx, x)
	if err != nil || len(first) != 2 {
		t.Fatalf("%q, %v", first, err)
	}
	g := db.current()
	loads := g.loads.Load()
	first[0] = "changed by the caller"
	again, err := db.Lookup(ctx, x)
	if err != nil || len(again) != 2 || again[0] == first[0] || !strings.HasPrefix(again[0], "example.com/x v1.0.0 h1:") {
		t.Fatalf("second answer %q, %v", again, err)
	}
	if g.loads.Load() != loads || db.current() != g {
		t.Errorf("the second lookup loaded %d more or changed client", g.loads.Load()-loads)
	}
	epoch := db.Epoch()
	if epoch == 0 {
		t.Fatal("epoch 0 with a client")
	}
	db.retire(g)
	if db.Epoch() != 0 {
		t.Errorf("epoch %d with no client", db.Epoch())
	}
	if _, ok := db.current().answered(x); ok {
		t.Error("a fresh client started with the old one's answers")
	}
	if db.Epoch() == epoch || db.Epoch() == 0 {
		t.Errorf("a fresh client's epoch %d, the old one's %d", db.Epoch(), epoch)
	}
	other := newTestSumDB(t, a.srv.URL, t.TempDir())
	if _, err := other.Lookup(ctx, x); err != nil || other.Epoch() == db.Epoch() {
		t.Errorf("another SumDB: epoch %d, %v; this one's %d", other.Epoch(), err, db.Epoch())
	}
}
