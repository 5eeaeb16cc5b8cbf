package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// Many concurrent publishes with duplicates: each distinct request is one
// event, handled once.
func TestLoadWithDuplicates(t *testing.T) {
	const total, distinct = 500, 350 // 30% duplicates
	cfg := testConfig(t)
	cfg.Workers = 4
	c := start(t, cfg)

	reqs := make([]Request, total)
	for i := range reqs {
		n := i
		if i >= distinct {
			n = rand.IntN(distinct)
		}
		reqs[i] = req(fmt.Sprintf("https://git.example.com/r%d", n), "v1.0.0")
	}
	rand.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })

	var calls counter
	var mu sync.Mutex
	byRepo := map[string]map[string]bool{} // repo -> event ids handed out
	dups := 0
	var wg sync.WaitGroup
	for _, r := range reqs {
		wg.Go(func() {
			id, dup, err := c.Enqueue(context.Background(), r)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if byRepo[r.Repo] == nil {
				byRepo[r.Repo] = map[string]bool{}
			}
			byRepo[r.Repo][id] = true
			if dup {
				dups++
			}
		})
	}
	wg.Wait()
	if dups != total-distinct || len(byRepo) != distinct {
		t.Fatalf("%d duplicates for %d repos; want %d for %d", dups, len(byRepo), total-distinct, distinct)
	}
	for repo, ids := range byRepo {
		if len(ids) != 1 {
			t.Fatalf("%s: event ids %v; want one", repo, ids)
		}
	}

	t0 := time.Now()
	runWorkers(t, c, func(ctx context.Context, r Request, progress func()) (Result, error) {
		calls.add(r.Repo)
		return admitted(r.Repo + "@v1.0.0"), nil
	})
	waitIdle(t, c)
	t.Logf("%d events handled in %v by %d workers", distinct, time.Since(t0), cfg.Workers)
	for repo, ids := range byRepo {
		if n := calls.get(repo); n != 1 {
			t.Errorf("%s handled %d times", repo, n)
		}
		for id := range ids {
			if _, err := c.EventVerdict(context.Background(), id); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		}
	}
}

func TestLock(t *testing.T) {
	c := start(t, testConfig(t))
	ctx := context.Background()
	const key = "example.com/m@v1.0.0"

	var wg sync.WaitGroup
	var mu sync.Mutex
	var unlocks []func()
	var locked int
	for range 2 {
		wg.Go(func() {
			unlock, err := c.Lock(ctx, key, time.Minute)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrLocked):
				locked++
			case err != nil:
				t.Error(err)
			default:
				unlocks = append(unlocks, unlock)
			}
		})
	}
	wg.Wait()
	if len(unlocks) != 1 || locked != 1 {
		t.Fatalf("%d holders, %d ErrLocked; want 1 and 1", len(unlocks), locked)
	}
	unlocks[0]()
	unlocks[0]() // harmless

	// Free again; this time let it expire.
	if _, err := c.Lock(ctx, key, time.Second); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	if _, err := c.Lock(ctx, key, time.Second); !errors.Is(err, ErrLocked) {
		t.Fatalf("while held: %v", err)
	}
	t0 := time.Now()
	for {
		unlock, err := c.Lock(ctx, key, time.Minute)
		if err == nil {
			t.Logf("expired lock free after %v", time.Since(t0))
			unlock()
			break
		}
		if !errors.Is(err, ErrLocked) {
			t.Fatal(err)
		}
		if time.Since(t0) > 10*time.Second {
			t.Fatal("lock did not expire")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := c.Lock(ctx, key, time.Millisecond); err == nil {
		t.Error("Lock accepted a ttl under a second")
	}
}

func BenchmarkEnqueue(b *testing.B) {
	c := start(b, testConfig(b))
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, err := c.Enqueue(ctx, req("r", fmt.Sprintf("v1.0.%d", i))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundTrip measures one request from Enqueue to its verdict: fetch,
// handler, commit, announce, ack, and the watch that sees the verdict.
func BenchmarkRoundTrip(b *testing.B) {
	c := start(b, testConfig(b))
	runWorkers(b, c, func(ctx context.Context, r Request, progress func()) (Result, error) {
		return admitted("example.com/m@" + r.Tag), nil
	})
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		id, _, err := c.Enqueue(ctx, req("r", fmt.Sprintf("v1.0.%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.WaitVerdict(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
