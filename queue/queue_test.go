package queue

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// testLog logs to stderr with QUEUE_TEST_LOG=debug|info, else nowhere.
func testLog() *slog.Logger {
	var level slog.Level
	switch os.Getenv("QUEUE_TEST_LOG") {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	default:
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func testConfig(t testing.TB) Config {
	return Config{
		StoreDir:        t.TempDir(),
		NoListen:        true,
		Workers:         2,
		ReverifyWorkers: 1,
		AckWait:         2 * time.Second,
		MaxDeliver:      3,
		Backoff:         []time.Duration{20 * time.Millisecond, 50 * time.Millisecond},
		ShutdownGrace:   2 * time.Second,
	}
}

func start(t testing.TB, cfg Config) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, cfg, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// runWorkers runs c's workers until the returned stop is called (or the test
// ends); stop returns RunWorkers' error.
func runWorkers(t testing.TB, c *Conn, h Handler) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.RunWorkers(ctx, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("RunWorkers did not return")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitVerdict(t testing.TB, c *Conn, eventID string) Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec, err := c.WaitVerdict(ctx, eventID)
	if err != nil {
		t.Fatalf("verdict of %s: %v", eventID, err)
	}
	return rec
}

// waitIdle waits until nothing is pending or in flight.
func waitIdle(t testing.TB, c *Conn) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := c.QueueDepth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if d == (Depth{}) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not idle: %+v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readAudit(t testing.TB, c *Conn, since time.Time) []AuditRecord {
	t.Helper()
	var recs []AuditRecord
	err := c.ReadAudit(context.Background(), since, func(r AuditRecord) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// subscribe collects the messages on subject.
func subscribe(t testing.TB, c *Conn, subject string) <-chan *nats.Msg {
	ch := make(chan *nats.Msg, 1024)
	sub, err := c.NATS().ChanSubscribe(subject, ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	if err := c.NATS().Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

func receive(t testing.TB, ch <-chan *nats.Msg) *nats.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no message")
		return nil
	}
}

// counter counts handler calls per event.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[id]++
	return c.n[id]
}

func (c *counter) get(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

func admitted(key string) Result {
	v, _ := json.Marshal(map[string]string{"result": "admitted", "module": key})
	return Result{Outcome: Done, Name: "admitted", Key: key, Verdict: v}
}

func req(repo, tag string) Request {
	return Request{Kind: KindAdmit, Repo: repo, Tag: tag, Commit: "0123456789abcdef0123456789abcdef01234567", Source: "test"}
}

func TestEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	cfg.NoListen, cfg.Listen = false, "127.0.0.1:-1"
	c := start(t, cfg)
	// A second process reaches it over TCP, as `modgate admit --enqueue` does.
	client := start(t, Config{URL: c.URL()})

	events := subscribe(t, c, SubjectEvents+".>")
	var calls counter
	runWorkers(t, c, func(ctx context.Context, r Request, progress func()) (Result, error) {
		calls.add(r.EventID)
		progress()
		return admitted("example.com/m@v1.0.0"), nil
	})

	ctx := context.Background()
	r := req("https://git.example.com/m", "v1.0.0")
	id, dup, err := client.Enqueue(ctx, r)
	if err != nil || dup || id == "" {
		t.Fatalf("Enqueue = %q, %v, %v", id, dup, err)
	}
	r.EventID, r.Source = "another-delivery", "webhook:github" // not part of the message id
	id2, dup, err := client.Enqueue(ctx, r)
	if err != nil || !dup || id2 != id {
		t.Fatalf("second Enqueue = %q, %v, %v; want %q, true", id2, dup, err, id)
	}

	rec, err := client.WaitVerdict(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Result != "admitted" || rec.Outcome != Done || rec.Key != "example.com/m@v1.0.0" || rec.Deliveries != 1 || rec.Request.Tag != "v1.0.0" {
		t.Errorf("event verdict = %+v", rec)
	}
	waitIdle(t, c) // the verdict is announced before the ack
	latest, err := client.Verdict(ctx, "example.com/m@v1.0.0")
	if err != nil || latest.EventID != id || string(latest.Verdict) != string(rec.Verdict) {
		t.Errorf("Verdict = %+v, %v", latest, err)
	}
	if _, err := client.Verdict(ctx, "example.com/m@v9.9.9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Verdict of unknown version: %v, want ErrNotFound", err)
	}

	m := receive(t, events)
	if m.Subject != SubjectAdmitted || m.Header.Get(HeaderEventID) != id {
		t.Errorf("result event on %s for %s", m.Subject, m.Header.Get(HeaderEventID))
	}
	if n := calls.get(id); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}

	recs := readAudit(t, client, time.Time{})
	if len(recs) != 1 || recs[0].Type != AuditVerdict || recs[0].EventID != id || recs[0].Result != "admitted" || recs[0].Seq == 0 {
		t.Fatalf("audit = %+v", recs)
	}
	var in Request
	if err := json.Unmarshal(recs[0].Inputs, &in); err != nil || in.Repo != r.Repo {
		t.Errorf("audit inputs = %s", recs[0].Inputs)
	}
	// ReadAudit's since is the time the server stored a record.
	t0 := time.Now()
	if err := client.Audit(ctx, AuditRecord{Type: AuditSecurity, Key: "example.com/m@v1.0.0", Result: "moved-tag"}); err != nil {
		t.Fatal(err)
	}
	if err := client.Audit(ctx, AuditRecord{Type: "bad type"}); err == nil {
		t.Error("Audit accepted a bad type")
	}
	if recs := readAudit(t, client, t0); len(recs) != 1 || recs[0].Type != AuditSecurity {
		t.Errorf("audit since the verdict = %+v", recs)
	}
	if recs := readAudit(t, client, time.Now().Add(time.Hour)); len(recs) != 0 {
		t.Errorf("audit since the future = %+v", recs)
	}

	for i, want := range []bool{false, true} {
		seen, err := client.SeenDelivery(ctx, "github", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
		if err != nil || seen != want {
			t.Errorf("SeenDelivery #%d = %v, %v; want %v", i+1, seen, err, want)
		}
	}
}

func TestEnqueueRejectsBadRequests(t *testing.T) {
	c := start(t, testConfig(t))
	for _, r := range []Request{
		{Kind: "publish", Repo: "r", Tag: "v1.0.0"},
		{Kind: KindAdmit, Repo: "r"},
		{Kind: KindReverify, Module: "example.com/m"},
	} {
		if _, _, err := c.Enqueue(context.Background(), r); err == nil {
			t.Errorf("Enqueue(%+v) succeeded", r)
		}
	}
}

func TestReverifyHasItsOwnConsumer(t *testing.T) {
	c := start(t, testConfig(t))
	kinds := make(chan string, 2)
	runWorkers(t, c, func(ctx context.Context, r Request, progress func()) (Result, error) {
		kinds <- r.Kind
		return Result{Outcome: Done, Name: "quarantined", Key: r.Module + "@" + r.Version}, nil
	})
	id, _, err := c.Enqueue(context.Background(), Request{Kind: KindReverify, Module: "example.com/m", Version: "v1.0.0", Source: "schedule"})
	if err != nil {
		t.Fatal(err)
	}
	if rec := waitVerdict(t, c, id); rec.Result != "quarantined" {
		t.Errorf("verdict %+v", rec)
	}
	waitIdle(t, c)
	if k := <-kinds; k != KindReverify {
		t.Errorf("kind %q", k)
	}
	if rec, err := c.Verdict(context.Background(), "example.com/m@v1.0.0"); err != nil || rec.Result != "quarantined" {
		t.Errorf("Verdict = %+v, %v", rec, err)
	}
}
