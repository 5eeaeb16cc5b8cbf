package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/store"
	"golang.org/x/mod/module"
)

// TestConcurrentPublishSameVersion: of many concurrent publishes of one
// version, through two Dirs on one root, exactly one creates it.
func TestConcurrentPublishSameVersion(t *testing.T) {
	d1 := openStore(t)
	d2, err := store.Open(d1.Root())
	if err != nil {
		t.Fatal(err)
	}
	v := newVersion(t, hello)
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range 8 {
		d := []*store.Dir{d1, d2}[i%2]
		wg.Go(func() {
			c, err := d.Publish(context.Background(), v)
			if err != nil {
				t.Error(err)
			}
			if c {
				mu.Lock()
				created++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if created != 1 {
		t.Errorf("%d publishes created the version, want 1", created)
	}
	checkComplete(t, d1, v)
}

// TestConcurrentPublishList: concurrent publishes of different versions
// must not lose each other's list entries.
func TestConcurrentPublishList(t *testing.T) {
	d1 := openStore(t)
	d2, _ := store.Open(d1.Root())
	var want []string
	var vs []*store.Version
	for i := range 8 {
		m := module.Version{Path: hello.Path, Version: fmt.Sprintf("v1.%d.0", i)}
		want = append(want, m.Version)
		vs = append(vs, newVersion(t, m))
	}
	var wg sync.WaitGroup
	for i, v := range vs {
		d := []*store.Dir{d1, d2}[i%2]
		wg.Go(func() {
			if _, err := d.Publish(context.Background(), v); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := d1.Versions(context.Background(), hello.Path)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Versions = %v, %v; want %v", got, err, want)
	}
}

// TestPublishWaitsForLockWithContext: a publisher waiting for another one's
// lock gives up when its context ends.
func TestPublishWaitsForLockWithContext(t *testing.T) {
	d1 := openStore(t)
	d2, _ := store.Open(d1.Root())
	entered, release := make(chan struct{}), make(chan struct{})
	store.SetTestHookAfter(d1, func(step string) error {
		if step == "zip" {
			close(entered)
			<-release
		}
		return nil
	})
	done := make(chan error)
	go func() {
		_, err := d1.Publish(context.Background(), newVersion(t, hello))
		done <- err
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	other := newVersion(t, module.Version{Path: hello.Path, Version: "v1.1.0"})
	if _, err := d2.Publish(ctx, other); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Publish while locked = %v, want context.DeadlineExceeded", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !publish(t, d2, other) {
		t.Error("created = false after the lock was released")
	}
}

// helperEnv carries a publish job to a child process of the test binary.
const helperEnv = "MODGATE_STORE_TEST_PUBLISH"

type helperJob struct {
	Root    string
	Version *store.Version
}

// TestHelperProcess is not a test: it is the child process of
// TestCrossProcessPublish.
func TestHelperProcess(t *testing.T) {
	job := os.Getenv(helperEnv)
	if job == "" {
		t.Skip("helper process only")
	}
	var j helperJob
	if err := json.Unmarshal([]byte(job), &j); err != nil {
		t.Fatal(err)
	}
	d, err := store.Open(j.Root)
	if err != nil {
		t.Fatal(err)
	}
	created, err := d.Publish(context.Background(), j.Version)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("created=%v\n", created)
}

// TestCrossProcessPublish: processes publishing the same version into one
// root exclude each other through the flock; exactly one creates it.
func TestCrossProcessPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	d := openStore(t)
	v := newVersion(t, hello)
	job, err := json.Marshal(helperJob{Root: d.Root(), Version: v})
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	outs := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
			cmd.Env = append(os.Environ(), helperEnv+"="+string(job))
			outs[i], errs[i] = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	created := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("child %d: %v\n%s", i, errs[i], outs[i])
		}
		created += strings.Count(string(outs[i]), "created=true")
	}
	if created != 1 {
		t.Errorf("%d processes created the version, want 1", created)
	}
	checkComplete(t, d, v)
}
