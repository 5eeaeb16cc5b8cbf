package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestRetryBackoff(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxDeliver = 5
	cfg.Backoff = []time.Duration{100 * time.Millisecond, 300 * time.Millisecond}
	c := start(t, cfg)
	var mu sync.Mutex
	var calls []time.Time
	var attempts []int
	runWorkers(t, c, func(ctx context.Context, r Request, progress func()) (Result, error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, time.Now())
		attempts = append(attempts, r.Attempt)
		if len(calls) < 3 {
			return Result{Outcome: Retry}, fmt.Errorf("git fetch: connection reset (%d)", len(calls))
		}
		return admitted("example.com/m@v1.0.0"), nil
	})
	id, _, err := c.Enqueue(context.Background(), req("r", "v1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	rec := waitVerdict(t, c, id)
	if rec.Result != "admitted" || rec.Deliveries != 3 {
		t.Errorf("verdict %+v", rec)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(attempts) != "[1 2 3]" {
		t.Fatalf("attempts %v", attempts)
	}
	d1, d2 := calls[1].Sub(calls[0]), calls[2].Sub(calls[1])
	t.Logf("delays %v, %v", d1, d2)
	if d1 < 100*time.Millisecond || d2 < 300*time.Millisecond || d2 <= d1 {
		t.Errorf("delays %v, %v; want >= 100ms, then >= 300ms", d1, d2)
	}
}

func TestRejectTerminates(t *testing.T) {
	cfg := testConfig(t)
	cfg.AckWait = time.Second
	c := start(t, cfg)
	rejected := subscribe(t, c, SubjectRejected)
	var calls counter
	runWorkers(t, c, func(ctx context.Context, r Request, progress func()) (Result, error) {
		calls.add(r.EventID)
		return Result{Outcome: Reject, Key: "example.com/m@v1.0.0", Verdict: json.RawMessage(`{"result":"rejected","problems":["tag-signature: no signature"]}`)}, nil
	})
	id, _, err := c.Enqueue(context.Background(), req("r", "v1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	if rec := waitVerdict(t, c, id); rec.Result != "rejected" || rec.Outcome != Reject {
		t.Errorf("verdict %+v", rec)
	}
	if m := receive(t, rejected); m.Header.Get(HeaderEventID) != id {
		t.Errorf("rejected event for %q", m.Header.Get(HeaderEventID))
	}
	waitIdle(t, c)
	time.Sleep(cfg.AckWait + 500*time.Millisecond) // a redelivery would come now
	if n := calls.get(id); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
	if rec, err := c.Verdict(context.Background(), "example.com/m@v1.0.0"); err != nil || rec.Result != "rejected" {
		t.Errorf("Verdict = %+v, %v", rec, err)
	}
}

func TestDeadLetter(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxDeliver = 3
	cfg.Backoff = []time.Duration{10 * time.Millisecond}
	c := start(t, cfg)
	dead := subscribe(t, c, SubjectDead)
	var calls counter
	runWorkers(t, c, func(ctx context.Context, r Request, progress func()) (Result, error) {
		n := calls.add(r.EventID)
		if n == 2 {
			panic("a bug")
		}
		return Result{Key: "example.com/m@v1.0.0"}, fmt.Errorf("boom %d", n)
	})
	id, _, err := c.Enqueue(context.Background(), req("r", "v1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	if err := json.Unmarshal(receive(t, dead).Data, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.EventID != id || rec.Error != "boom 3" || rec.Result != "error" || rec.Outcome != Retry || rec.Deliveries != 3 || rec.Request.Repo != "r" {
		t.Errorf("dead letter %+v", rec)
	}
	if ev := waitVerdict(t, c, id); ev.Result != "error" {
		t.Errorf("event verdict %+v", ev)
	}
	waitIdle(t, c)
	if n := calls.get(id); n != 3 {
		t.Errorf("handler called %d times, want 3", n)
	}
	var types []string
	for _, a := range readAudit(t, c, time.Time{}) {
		types = append(types, a.Type+":"+a.Error)
	}
	if fmt.Sprint(types) != "[dead-letter:boom 3]" {
		t.Errorf("audit %v", types)
	}
	// With no verdict before it, the error is the version's latest.
	if rec, err := c.Verdict(context.Background(), "example.com/m@v1.0.0"); err != nil || rec.Result != "error" {
		t.Errorf("Verdict = %+v, %v", rec, err)
	}
}

// A job whose worker dies on every attempt is dead-lettered too, on the
// extra delivery the consumer allows.
func TestDeadLetterWithoutOutcome(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxDeliver = 1
	cfg.AckWait = time.Second
	c := start(t, cfg)
	dead := subscribe(t, c, SubjectDead)
	id, _, err := c.Enqueue(context.Background(), req("r", "v1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	// A worker that takes the job and dies.
	if _, err := c.admit.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var calls counter
	runWorkers(t, c, func(ctx context.Context, r Request, progress func()) (Result, error) {
		calls.add(r.EventID)
		return admitted("example.com/m@v1.0.0"), nil
	})
	var rec Record
	if err := json.Unmarshal(receive(t, dead).Data, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.EventID != id || rec.Deliveries != 2 || rec.Error == "" {
		t.Errorf("dead letter %+v", rec)
	}
	waitIdle(t, c)
	if n := calls.get(id); n != 0 {
		t.Errorf("handler called %d times, want 0", n)
	}
}

func TestHeartbeat(t *testing.T) {
	cfg := testConfig(t)
	cfg.AckWait = time.Second
	c := start(t, cfg)
	var calls counter
	runWorkers(t, c, func(ctx context.Context, r Request, progress func()) (Result, error) {
		calls.add(r.EventID)
		time.Sleep(3500 * time.Millisecond) // 3.5 ack waits, no progress calls
		return admitted("example.com/m@v1.0.0"), nil
	})
	id, _, err := c.Enqueue(context.Background(), req("r", "v1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	if rec := waitVerdict(t, c, id); rec.Deliveries != 1 {
		t.Errorf("verdict after %d deliveries", rec.Deliveries)
	}
	waitIdle(t, c)
	if n := calls.get(id); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
}

func TestShutdownFinishesRunningJobs(t *testing.T) {
	cfg := testConfig(t)
	cfg.ShutdownGrace = 10 * time.Second
	c := start(t, cfg)
	started := make(chan struct{})
	stop := runWorkers(t, c, func(ctx context.Context, r Request, progress func()) (Result, error) {
		close(started)
		time.Sleep(time.Second)
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return admitted("example.com/m@v1.0.0"), nil
	})
	id, _, err := c.Enqueue(context.Background(), req("r", "v1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	<-started
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Recorded and acked before RunWorkers returned.
	rec, err := c.EventVerdict(context.Background(), id)
	if err != nil || rec.Result != "admitted" {
		t.Fatalf("verdict %+v, %v", rec, err)
	}
	if d, err := c.QueueDepth(context.Background()); err != nil || d != (Depth{}) {
		t.Errorf("depth %+v, %v", d, err)
	}
}

func TestShutdownHandsBackSlowJobs(t *testing.T) {
	cfg := testConfig(t)
	cfg.ShutdownGrace = 200 * time.Millisecond
	cfg.AckWait = 30 * time.Second // handing back must not wait for it
	c := start(t, cfg)
	started := make(chan struct{})
	stop := runWorkers(t, c, func(ctx context.Context, r Request, progress func()) (Result, error) {
		close(started)
		<-ctx.Done() // longer than the grace period
		return Result{}, ctx.Err()
	})
	id, _, err := c.Enqueue(context.Background(), req("r", "v1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	<-started
	t0 := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if _, err := c.EventVerdict(context.Background(), id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("verdict after hand-back: %v", err)
	}
	// The next set of workers (another process, or this one restarted)
	// takes it at once.
	var attempt int
	runWorkers(t, c, func(ctx context.Context, r Request, progress func()) (Result, error) {
		attempt = r.Attempt
		return admitted("example.com/m@v1.0.0"), nil
	})
	t1 := time.Now()
	rec := waitVerdict(t, c, id)
	if rec.Result != "admitted" || attempt != 2 { // a hand-back costs one delivery
		t.Errorf("verdict %+v on attempt %d", rec, attempt)
	}
	if d := time.Since(t1); d > 5*time.Second {
		t.Errorf("handed-back job took %v to come back", d)
	}
}

// Two deliveries of one event that run at once (a worker that missed its
// heartbeats) record one verdict: the first.
func TestConcurrentDeliveriesRecordOneVerdict(t *testing.T) {
	c := start(t, testConfig(t))
	r := req("r", "v1.0.0")
	r.EventID, r.Attempt = "ev1", 1
	first := c.newRecord(r, admitted("example.com/m@v1.0.0"), nil)
	second := c.newRecord(r, Result{Outcome: Reject, Key: "example.com/m@v1.0.0"}, nil)
	for _, rec := range []Record{first, second} {
		if err := c.commit(rec); err != nil {
			t.Fatal(err)
		}
	}
	if rec, err := c.EventVerdict(context.Background(), "ev1"); err != nil || rec.Result != "admitted" {
		t.Errorf("event verdict %+v, %v", rec, err)
	}
	if rec, err := c.Verdict(context.Background(), "example.com/m@v1.0.0"); err != nil || rec.Result != "admitted" {
		t.Errorf("latest verdict %+v, %v", rec, err)
	}
	if recs := readAudit(t, c, time.Time{}); len(recs) != 1 {
		t.Errorf("%d audit records, want 1", len(recs))
	}
}

// The latest verdict of a version is the newest, and a job given up does
// not replace a real verdict.
func TestLatestVerdict(t *testing.T) {
	c := start(t, testConfig(t))
	const key = "example.com/m@v1.0.0"
	rec := func(id string, res Result, cause error) Record {
		r := req("r", "v1.0.0")
		r.EventID, r.Attempt = id, 1
		return c.newRecord(r, res, cause)
	}
	older := rec("ev1", Result{Outcome: Reject, Key: key}, nil)
	newer := rec("ev2", admitted(key), nil)
	gaveUp := rec("ev3", Result{Key: key}, errors.New("network"))
	for _, r := range []Record{newer, older, gaveUp} {
		if err := c.commit(r); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := c.Verdict(context.Background(), key); err != nil || got.EventID != "ev2" {
		t.Errorf("latest verdict %+v, %v; want ev2", got, err)
	}
}

// A message no worker can read is dead-lettered at once, not retried.
func TestUndecodableRequest(t *testing.T) {
	c := start(t, testConfig(t))
	dead := subscribe(t, c, SubjectDead)
	if _, err := c.js.Publish(context.Background(), SubjectAdmit, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	var calls counter
	runWorkers(t, c, func(ctx context.Context, r Request, progress func()) (Result, error) {
		calls.add(r.EventID)
		return admitted("x@v1.0.0"), nil
	})
	var rec Record
	if err := json.Unmarshal(receive(t, dead).Data, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.EventID != "seq-1" || rec.Deliveries != 1 || rec.Result != "error" {
		t.Errorf("dead letter %+v", rec)
	}
	waitIdle(t, c)
	if len(calls.n) != 0 {
		t.Errorf("handler called: %v", calls.n)
	}
}
