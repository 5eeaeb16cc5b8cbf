package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	modzip "golang.org/x/mod/zip"

	"github.com/modgate/modgate/internal/sumdbtest"
	"github.com/modgate/modgate/pipeline"
)

// upstreamCounts counts requests per path of each script's upstream proxy.
var upstreamCounts sync.Map // *testscript.TestScript → *counter

type counter struct {
	mu sync.Mutex
	n  map[string]int
}

// upstreamproxy DIR [tamper MODULE@VERSION...]: serve the module versions
// in DIR (one directory per version, named PATH@VERSION with '/' as '!')
// in GOPROXY layout over HTTP, with a checksum database of their go.sum
// records (a golang.org/x/mod/sumdb test server) at /sumdb/sum.upstream.example/,
// as proxy.golang.org serves sum.golang.org. A tampered version is served
// with a zip that is valid but not what the database records. Sets
// $UPSTREAM (the proxy URL) and $UPSTREAMSUMDB (the database's key, for
// GOSUMDB), and writes each version's go.sum lines to sums/<its dir name>.
func cmdUpstreamProxy(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 1 && args[1] != "tamper" {
		ts.Fatalf("usage: upstreamproxy DIR [tamper MODULE@VERSION...]")
	}
	root := ts.MkAbs(args[0])
	tamper := make(map[string]bool)
	for _, a := range args[min(2, len(args)):] {
		tamper[a] = true
	}
	out := ts.MkAbs(".upstream")
	ts.Check(os.MkdirAll(out, 0o755))
	records := make(map[string]string)
	versions := make(map[string][]string)
	entries, err := os.ReadDir(root)
	ts.Check(err)
	for _, e := range entries {
		path, version, ok := strings.Cut(strings.ReplaceAll(e.Name(), "!", "/"), "@")
		if !ok {
			ts.Fatalf("upstreamproxy: %s: want PATH@VERSION", e.Name())
		}
		m := module.Version{Path: path, Version: version}
		escPath, err := module.EscapePath(path)
		ts.Check(err)
		dir := filepath.Join(out, escPath, "@v")
		ts.Check(os.MkdirAll(dir, 0o755))
		zipName := filepath.Join(dir, version+".zip")
		zf, err := os.Create(zipName)
		ts.Check(err)
		ts.Check(modzip.CreateFromDir(zf, m, filepath.Join(root, e.Name())))
		ts.Check(zf.Close())
		gomod, err := os.ReadFile(filepath.Join(root, e.Name(), "go.mod"))
		ts.Check(err)
		ts.Check(os.WriteFile(filepath.Join(dir, version+".mod"), gomod, 0o644))
		ts.Check(os.WriteFile(filepath.Join(dir, version+".info"), fmt.Appendf(nil, `{"Version":%q,"Time":"2026-03-04T05:06:07Z"}`, version), 0o644))
		zh, err := dirhash.HashZip(zipName, dirhash.Hash1)
		ts.Check(err)
		mh, err := pipeline.HashGoMod(gomod)
		ts.Check(err)
		records[m.String()] = fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", path, version, zh, path, version, mh)
		ts.Check(os.MkdirAll(ts.MkAbs("sums"), 0o755))
		ts.Check(os.WriteFile(filepath.Join(ts.MkAbs("sums"), e.Name()), []byte(records[m.String()]), 0o644))
		versions[escPath] = append(versions[escPath], version)
		if tamper[m.String()] {
			cmdTamperZip(ts, false, []string{zipName})
		}
	}
	for escPath, vs := range versions {
		sort.Slice(vs, func(i, j int) bool { return semver.Compare(vs[i], vs[j]) < 0 })
		ts.Check(os.WriteFile(filepath.Join(out, escPath, "@v", "list"), []byte(strings.Join(vs, "\n")+"\n"), 0o644))
	}

	skey, vkey, err := note.GenerateKey(rand.Reader, "sum.upstream.example")
	ts.Check(err)
	sumdbHandler := http.StripPrefix("/sumdb/sum.upstream.example", sumdbtest.New(skey, records).Handler())
	files := http.FileServer(http.Dir(out))
	c := &counter{n: make(map[string]int)}
	upstreamCounts.Store(ts, c)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.n[r.URL.Path]++
		c.mu.Unlock()
		switch {
		case r.URL.Path == "/sumdb/sum.upstream.example/supported":
			w.WriteHeader(http.StatusOK)
		case strings.HasPrefix(r.URL.Path, "/sumdb/sum.upstream.example/"):
			sumdbHandler.ServeHTTP(w, r)
		case strings.HasSuffix(r.URL.Path, "/@latest"):
			http.NotFound(w, r)
		default:
			files.ServeHTTP(w, r)
		}
	}))
	ts.Defer(srv.Close)
	ts.Setenv("UPSTREAM", srv.URL)
	ts.Setenv("UPSTREAMSUMDB", vkey)
}

// upstreamcount PATH: print how many requests the upstream proxy got for
// PATH.
func cmdUpstreamCount(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: upstreamcount PATH")
	}
	v, ok := upstreamCounts.Load(ts)
	if !ok {
		ts.Fatalf("no upstreamproxy in this script")
	}
	c := v.(*counter)
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(ts.Stdout(), "%d\n", c.n[args[0]])
}

// httpstatus URL: print the status code and body of a GET, whatever it is.
func cmdHTTPStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: httpstatus URL")
	}
	resp, err := http.Get(args[0])
	ts.Check(err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%d %s", resp.StatusCode, body)
}

// concurrentget N URL: GET URL N times at once; print "COUNT x STATUS" per
// status.
func cmdConcurrentGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: concurrentget N URL")
	}
	var n int
	fmt.Sscan(args[0], &n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	counts := make(map[int]int)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequestWithContext(ctx, "GET", args[1], nil)
			resp, err := http.DefaultClient.Do(req)
			code := 0
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			mu.Lock()
			counts[code]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	var codes []int
	for c := range counts {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		fmt.Fprintf(ts.Stdout(), "%d x %d\n", counts[c], c)
	}
}

// waitfile GLOB: wait up to 30s for a file matching GLOB to exist.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile GLOB")
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m, _ := filepath.Glob(ts.MkAbs(args[0])); len(m) > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	ts.Fatalf("no file matches %s after 30s", args[0])
}
