package sumlog

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
)

// testClient is sumdb.ClientOps for the sumdb client in golang.org/x/mod,
// the same client code the go command runs, reading a Log's Handler in
// process. Its config (the last tree head it verified) and its tile cache
// outlive the Logs it talks to, as a developer's GOPATH outlives modgate's
// restarts, so a fork across a restart fails its Lookup.
type testClient struct {
	vkey string

	mu       sync.Mutex
	h        http.Handler
	config   map[string][]byte
	cache    map[string][]byte
	security []string
}

func newTestClient(vkey string) *testClient {
	return &testClient{vkey: vkey, config: map[string][]byte{}, cache: map[string][]byte{}}
}

func (c *testClient) serve(h http.Handler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.h = h
}

// lookup checks m's record through a new sumdb.Client (so it re-reads the
// head it verified last), and returns the go.sum lines it got.
func (c *testClient) lookup(m module.Version) (string, error) {
	cl := sumdb.NewClient(c)
	zip, err := cl.Lookup(m.Path, m.Version)
	if err != nil {
		return "", err
	}
	mod, err := cl.Lookup(m.Path, m.Version+"/go.mod")
	if err != nil {
		return "", err
	}
	return strings.Join(append(zip, mod...), "\n") + "\n", nil
}

func (c *testClient) ReadRemote(path string) ([]byte, error) {
	c.mu.Lock()
	h := c.h
	c.mu.Unlock()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", path, rec.Code, rec.Body.Bytes())
	}
	return rec.Body.Bytes(), nil
}

func (c *testClient) ReadConfig(file string) ([]byte, error) {
	if file == "key" {
		return []byte(c.vkey), nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.config[file], nil
}

func (c *testClient) WriteConfig(file string, old, new []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if string(c.config[file]) != string(old) {
		return sumdb.ErrWriteConflict
	}
	c.config[file] = new
	return nil
}

func (c *testClient) ReadCache(file string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.cache[file]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("not cached")
}

func (c *testClient) WriteCache(file string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cache[file] = data
}

func (c *testClient) Log(msg string) {}

func (c *testClient) SecurityError(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.security = append(c.security, msg)
}

// TestHandlerWithSumdbClient: x/mod's sumdb client verifies records through
// the Handler, across restarts of the log; and it detects the fork that a
// log rebuilt with the same key would be.
func TestHandlerWithSumdbClient(t *testing.T) {
	k := newTestKey(t, testName)
	dir := t.TempDir()
	c := newTestClient(k.vkey)
	l := openTestLog(t, dir, k)
	c.serve(l.Handler())
	n := 0
	for round := range 3 {
		for range 100 + 80*round { // across a tile boundary (256)
			m := numbered(n)
			mustAppend(t, l, m, recordFor(m, ""))
			n++
		}
		for _, i := range []int{0, n / 2, n - 1} {
			m := numbered(i)
			got, err := c.lookup(m)
			if err != nil {
				t.Fatalf("round %d: client Lookup(%v): %v (security errors: %q)", round, m, err, c.security)
			}
			if got != string(recordFor(m, "")) {
				t.Fatalf("client got %q, want %q", got, recordFor(m, ""))
			}
		}
		l.Close()
		l = openTestLog(t, dir, k)
		c.serve(l.Handler())
	}
	if _, err := c.lookup(module.Version{Path: "corp.example/absent", Version: "v1.0.0"}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("client Lookup of an absent version = %v, want a 404", err)
	}

	// The same key, a different history: every client that saw the real
	// log must refuse it.
	forked := openTestLog(t, t.TempDir(), k)
	for i := range n + 1 {
		seed := ""
		if i == 3 {
			seed = "fork"
		}
		mustAppend(t, forked, numbered(i), recordFor(numbered(i), seed))
	}
	c.serve(forked.Handler())
	_, err := c.lookup(numbered(n))
	if err == nil {
		t.Fatal("client accepted a forked log")
	}
	t.Logf("fork: %v; security errors %q", err, c.security)
}

// TestHandlerPaths checks the Handler's answers to what the go command and
// hostile clients ask.
func TestHandlerPaths(t *testing.T) {
	k := newTestKey(t, testName)
	l := openTestLog(t, t.TempDir(), k)
	for i := range 3 {
		mustAppend(t, l, numbered(i), recordFor(numbered(i), ""))
	}
	_, signed, _ := l.TreeHead(t.Context())
	m := numbered(1)
	tests := []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/supported", 200, ""},
		{"GET", "/latest", 200, string(signed)},
		{"GET", "/lookup/" + m.Path + "@" + m.Version, 200, "1\n" + string(recordFor(m, "")) + "\n" + string(signed)},
		{"GET", "/lookup/corp.example/absent@v1.0.0", 404, ""},
		{"GET", "/lookup/corp.example/x@v1.0", 400, ""},
		{"GET", "/tile/8/0/000.p/3", 200, ""},
		{"GET", "/tile/8/data/000.p/3", 200, ""},
		{"GET", "/tile/8/0/000.p/4", 404, ""},  // past the tree
		{"GET", "/tile/8/0/000", 404, ""},      // full tile of a tree of 3
		{"GET", "/tile/8/data/000", 404, ""},   // likewise
		{"GET", "/tile/30/0/000", 404, ""},     // only height 8
		{"GET", "/tile/30/data/000", 404, ""},  // likewise
		{"GET", "/tile/8/0/x001/000", 404, ""}, // far past the tree
		{"GET", "/other", 404, ""},
		{"POST", "/latest", 405, ""},
	}
	h := l.Handler()
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.code || tt.body != "" && rec.Body.String() != tt.body {
			t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, rec.Code, rec.Body.String(), tt.code, tt.body)
		}
	}
}
