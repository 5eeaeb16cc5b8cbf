//go:build unix

package queue

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The crash test runs workers in a child process (this test binary, run as
// TestHelperProcess) that embeds the server on a store directory shared with
// the parent, as `modgate serve` does, and SIGKILLs it at random points while
// it works. The handler logs "start", "done", "dup" (it found its work
// already done: the idempotent re-run the pipeline gets from the store),
// "late" (it was called although a verdict was recorded: must never happen)
// and "retry" lines, each fsynced.
const (
	crashEvents = 50
	crashKills  = 4
)

func crashConfig(store string) Config {
	return Config{
		StoreDir:        store,
		NoListen:        true,
		Workers:         3,
		ReverifyWorkers: 1,
		AckWait:         time.Second,
		MaxDeliver:      10,
		Backoff:         []time.Duration{50 * time.Millisecond},
		ShutdownGrace:   time.Second,
	}
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: several seconds")
	}
	seeds := 3
	if s, err := strconv.Atoi(os.Getenv("QUEUE_CRASH_SEEDS")); err == nil {
		seeds = s
	}
	for seed := range seeds {
		t.Run(fmt.Sprintf("seed%d", seed+1), func(t *testing.T) { crashRun(t, uint64(seed+1)) })
	}
}

func crashRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x6d6f6467617465))
	dir := t.TempDir()
	store, logFile := filepath.Join(dir, "nats"), filepath.Join(dir, "handler.log")

	c := start(t, crashConfig(store))
	ids := map[string]int{} // event id -> index
	for i := range crashEvents {
		id, _, err := c.Enqueue(context.Background(), req(fmt.Sprintf("r%d", i), "v1.0.0"))
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = i
	}
	c.Close()

	runs, kills := 0, 0
rounds:
	for round := 0; ; round++ {
		final := round >= crashKills
		var out bytes.Buffer
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "QUEUE_CRASH_STORE="+store, "QUEUE_CRASH_LOG="+logFile,
			fmt.Sprintf("QUEUE_CRASH_SEED=%d", seed*100+uint64(round)))
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		runs++
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var timeout <-chan time.Time
		if final {
			timeout = time.After(90 * time.Second)
		} else {
			timeout = time.After(time.Duration(50+rng.IntN(700)) * time.Millisecond)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out.String())
			}
			if final {
				break rounds
			}
		case <-timeout:
			if final {
				cmd.Process.Kill()
				<-done
				t.Fatalf("child did not finish\n%s", out.String())
			}
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			kills++
		}
	}
	lines := readCrashLog(t, logFile)
	c = start(t, crashConfig(store))
	if d, err := c.QueueDepth(context.Background()); err != nil || d != (Depth{}) {
		t.Errorf("depth %+v, %v", d, err)
	}
	audits := map[string]int{}
	for _, a := range readAudit(t, c, time.Time{}) {
		audits[a.Type+" "+a.EventID]++
	}
	results := countResultEvents(t, c)
	reruns, dups, retries, repeated := 0, 0, 0, 0
	for id, i := range ids {
		want := "admitted"
		if i%10 == 3 {
			want = "rejected"
		}
		rec, err := c.EventVerdict(context.Background(), id)
		if err != nil || rec.Result != want {
			t.Errorf("event %d: verdict %q, %v; want %q", i, rec.Result, err, want)
		}
		if n := audits[AuditVerdict+" "+id]; n != 1 {
			t.Errorf("event %d: %d verdict audit records", i, n)
		}
		if n := results[id]; n != 1 {
			t.Errorf("event %d: %d result events", i, n)
		}
		l := lines[id]
		if l["done"] != 1 {
			t.Errorf("event %d: done %d times", i, l["done"])
		}
		if l["late"] != 0 {
			t.Errorf("event %d: handler called %d times after its verdict was recorded", i, l["late"])
		}
		if l["start"] > 1+l["retry"] {
			reruns++
		}
		for k, n := range l {
			if strings.HasPrefix(k, "attempt ") && n > 1 {
				repeated++ // a delivery count was lost in a crash
			}
		}
		dups += l["dup"]
		retries += l["retry"]
	}
	if repeated != 0 {
		t.Errorf("%d attempt numbers seen twice", repeated)
	}
	if len(audits) != crashEvents {
		t.Errorf("%d audit records, want %d", len(audits), crashEvents)
	}
	t.Logf("seed %d: %d events, %d runs, %d kills; %d events re-run after a kill, %d of them after their work was done (dup); %d planned retries",
		seed, crashEvents, runs, kills, reruns, dups, retries)
}

// readCrashLog counts the handler's lines per event and kind, and, as kind
// "attempt N", the starts per attempt number.
func readCrashLog(t *testing.T, name string) map[string]map[string]int {
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]map[string]int{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) != 3 {
			t.Fatalf("bad log line %q", s.Text())
		}
		kind, id := f[0], f[1]
		if m[id] == nil {
			m[id] = map[string]int{}
		}
		m[id][kind]++
		if kind == "start" {
			m[id]["attempt "+f[2]]++
		}
	}
	return m
}

// countResultEvents counts the result events per event id in the stream.
func countResultEvents(t *testing.T, c *Conn) map[string]int {
	ctx := context.Background()
	cons, err := c.js.OrderedConsumer(ctx, EventsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{SubjectEvents + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for {
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			n[m.Headers().Get(HeaderEventID)]++
			got++
		}
		if batch.Error() != nil && !errors.Is(batch.Error(), jetstream.ErrNoMessages) {
			t.Fatal(batch.Error())
		}
		if got == 0 {
			return n
		}
	}
}

// TestHelperProcess is the crash test's child: workers on the shared store
// until the queue is empty (or until it is killed).
func TestHelperProcess(t *testing.T) {
	store := os.Getenv("QUEUE_CRASH_STORE")
	if store == "" {
		t.Skip("crash test child")
	}
	seed, _ := strconv.ParseUint(os.Getenv("QUEUE_CRASH_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 1))
	f, err := os.OpenFile(os.Getenv("QUEUE_CRASH_LOG"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	published := map[string]bool{} // the "store": what is done stays done
	if b, err := os.ReadFile(f.Name()); err == nil {
		for l := range strings.Lines(string(b)) {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "done" {
				published[f[1]] = true
			}
		}
	}
	logLine := func(kind string, r Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(f, "%s %s %d\n", kind, r.EventID, r.Attempt)
		if err := f.Sync(); err != nil {
			panic(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := crashConfig(store)
	if n, err := strconv.Atoi(os.Getenv("QUEUE_CRASH_MAX_DELIVER")); err == nil {
		cfg.MaxDeliver = n
	}
	poison := os.Getenv("QUEUE_CRASH_POISON") // a repo whose job kills its process
	c, err := Start(ctx, cfg, testLog())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sleeps := make(chan time.Duration, 1000)
	for range cap(sleeps) {
		sleeps <- time.Duration(30+rng.IntN(50)) * time.Millisecond
	}
	h := func(ctx context.Context, r Request, progress func()) (Result, error) {
		id := r.EventID
		logLine("start", r)
		if _, err := c.EventVerdict(ctx, id); err == nil {
			logLine("late", r)
		}
		i, _ := strconv.Atoi(strings.TrimPrefix(r.Repo, "r"))
		sleep(ctx, <-sleeps)
		if r.Repo == poison {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		if i%10 == 7 && r.Attempt == 1 {
			logLine("retry", r)
			return Result{}, errors.New("transient")
		}
		mu.Lock()
		kind := "done"
		if published[id] {
			kind = "dup"
		}
		published[id] = true
		mu.Unlock()
		logLine(kind, r)
		if i%10 == 3 {
			return Result{Outcome: Reject, Key: r.Repo + "@v1.0.0"}, nil
		}
		return admitted(r.Repo + "@v1.0.0"), nil
	}
	done := make(chan error, 1)
	go func() { done <- c.RunWorkers(ctx, h) }()
	for {
		time.Sleep(100 * time.Millisecond)
		d, err := c.QueueDepth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d == (Depth{}) {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A job that kills its process every time (out of memory, say) is
// dead-lettered after MaxDeliver attempts, although the embedded server,
// killed with it, forgets how often it delivered it.
func TestCrashPoison(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: several seconds")
	}
	const events, maxDeliver = 5, 3
	dir := t.TempDir()
	store, logFile := filepath.Join(dir, "nats"), filepath.Join(dir, "handler.log")
	cfg := crashConfig(store)
	cfg.MaxDeliver = maxDeliver
	c := start(t, cfg)
	ids := make([]string, events)
	for i := range ids {
		var err error
		if ids[i], _, err = c.Enqueue(context.Background(), req(fmt.Sprintf("r%d", i), "v1.0.0")); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()

	runs := 0
	for ; ; runs++ {
		if runs > 10 {
			t.Fatal("poison job was not given up")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "QUEUE_CRASH_STORE="+store, "QUEUE_CRASH_LOG="+logFile,
			"QUEUE_CRASH_POISON=r0", fmt.Sprintf("QUEUE_CRASH_MAX_DELIVER=%d", maxDeliver))
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
			continue // the poison job killed it
		}
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		break
	}
	lines := readCrashLog(t, logFile)
	c = start(t, cfg)
	rec, err := c.EventVerdict(context.Background(), ids[0])
	if err != nil || rec.Result != "error" || rec.Outcome != Retry {
		t.Errorf("poison job verdict %+v, %v", rec, err)
	}
	if n := lines[ids[0]]["start"]; n != maxDeliver {
		t.Errorf("poison job started %d times, want %d", n, maxDeliver)
	}
	// A job in flight each time the poison job killed the process shares
	// its fate: it runs out of attempts too.
	bystanders := 0
	for i, id := range ids[1:] {
		want := "admitted"
		if i+1 == 3 {
			want = "rejected"
		}
		rec, err := c.EventVerdict(context.Background(), id)
		switch {
		case err != nil:
			t.Errorf("event %d: %v", i+1, err)
		case rec.Result == "error" && lines[id]["start"] == maxDeliver && lines[id]["done"] <= 1:
			// done once: it finished, but the process died before the
			// commit; its work is done (the next admission says
			// "duplicate"), its verdict is the error.
			bystanders++
		case rec.Result != want || lines[id]["done"] != 1:
			t.Errorf("event %d: verdict %q; done %d times", i+1, rec.Result, lines[id]["done"])
		}
	}
	t.Logf("%d other jobs were in flight at every crash and were given up too", bystanders)
	t.Logf("%d child runs killed by the poison job; verdict: %s after %d deliveries", runs, rec.Error, rec.Deliveries)
}
