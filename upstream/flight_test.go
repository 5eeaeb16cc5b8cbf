package upstream

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
)

// 100 concurrent Fetch calls of one version download it once, and each
// caller gets its own zip file.
func TestFetchConcurrent(t *testing.T) {
	e := newEnv(t)
	tm := helloModule(t, "v1.0.0")
	e.publish(tm)
	release := make(chan struct{})
	e.proxy.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, ".zip") {
			<-release
		}
		return false
	})
	f := e.fetcher(Options{})

	const n = 100
	mods := make([]*Module, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { mods[i], errs[i] = e.fetch(f, tm.m) })
	}
	waitFor(t, func() bool { return waiters(f, tm.m) == n })
	close(release)
	wg.Wait()

	paths := make(map[string]bool)
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if data, err := os.ReadFile(mods[i].ZipPath); err != nil || !bytes.Equal(data, tm.zip) {
			t.Fatalf("caller %d: zip %s: %v", i, mods[i].ZipPath, err)
		}
		paths[mods[i].ZipPath] = true
	}
	if len(paths) != n {
		t.Errorf("%d distinct zip files for %d callers", len(paths), n)
	}
	for _, ext := range []string{".info", ".mod", ".zip"} {
		if c := e.proxy.count(ext); c != 1 {
			t.Errorf("%d %s requests, want 1", c, ext)
		}
	}
	if c := e.db.lookups(); c != 1 {
		t.Errorf("%d database lookups, want 1", c)
	}
	for _, m := range mods {
		if err := m.Remove(); err != nil {
			t.Error(err)
		}
	}
	if left := e.tempFiles(); len(left) > 0 {
		t.Errorf("left in TempDir: %q", left)
	}
}

// A caller that gives up does not cancel the download for the others; when
// the last one gives up, the download stops and leaves nothing behind.
func TestFetchCancel(t *testing.T) {
	e := newEnv(t)
	tm := helloModule(t, "v1.0.0")
	e.publish(tm)
	release := make(chan struct{})
	aborted := make(chan struct{}, 10)
	e.proxy.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, ".zip") {
			select {
			case <-release:
			case <-r.Context().Done():
				aborted <- struct{}{}
				return true
			}
		}
		return false
	})
	f := e.fetcher(Options{})

	ctxA, cancelA := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var errA, errB error
	var modB *Module
	wg.Go(func() { _, errA = f.Fetch(ctxA, tm.m) })
	wg.Go(func() { modB, errB = e.fetch(f, tm.m) })
	waitFor(t, func() bool { return waiters(f, tm.m) == 2 && e.proxy.count(".zip") == 1 })
	cancelA()
	waitFor(t, func() bool { return waiters(f, tm.m) == 1 })
	close(release)
	wg.Wait()
	if !errors.Is(errA, context.Canceled) || !IsTransient(errA) || !strings.Contains(errA.Error(), "example.com/hello@v1.0.0: zip:") {
		t.Errorf("A: %v", errA)
	}
	if errB != nil {
		t.Fatalf("B: %v", errB)
	}
	modB.Remove()

	// Everyone gives up.
	release = make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := f.Fetch(ctx, helloModuleAt(t, e, "v1.0.1")); done <- err }()
	waitFor(t, func() bool { return e.proxy.count("v1.0.1.zip") == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	select {
	case <-aborted:
	case <-time.After(10 * time.Second):
		t.Fatal("download not stopped")
	}
	waitFor(t, func() bool { return len(e.tempFiles()) == 0 })
}

// helloModuleAt publishes another version of hello.
func helloModuleAt(t *testing.T, e *env, vers string) module.Version {
	tm := helloModule(t, vers)
	e.publish(tm)
	return tm.m
}

func waiters(f *Fetcher, m module.Version) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.flights[m]; c != nil {
		return c.waiters
	}
	return 0
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(time.Millisecond)
	}
}
