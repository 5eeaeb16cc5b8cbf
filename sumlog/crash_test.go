package sumlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The crash test re-runs this test binary as a child that appends until it
// is killed. These variables carry the child's arguments.
const (
	envCrashDir  = "SUMLOG_CRASH_CHILD_DIR"
	envCrashSKey = "SUMLOG_CRASH_CHILD_SKEY"
	envCrashVKey = "SUMLOG_CRASH_CHILD_VKEY"
)

// TestCrashHelperProcess is the child: it opens the log, re-appends the last
// few records (idempotence across crashes), then appends from two
// goroutines forever, printing "rec <id> <k>" for each Append that returned
// (k names the record: numbered(k), recordFor(…, "")) and "head <N> <hash>"
// for a head it saw afterwards. It is not a test on its own.
func TestCrashHelperProcess(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("helper process for TestCrashKill")
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		os.Stdout.Write(fmt.Appendf(nil, format+"\n", args...)) // one write per line: whole or absent
	}
	fail := func(err error) {
		say("error %v", err)
		os.Exit(3)
	}
	k := parseTestKey(t, os.Getenv(envCrashSKey), os.Getenv(envCrashVKey))
	l, err := Open(dir, k.signer, k.verifier)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	start := l.Size()
	say("ready %d", start)
	appendOne := func(i int64) {
		m := numbered(int(i))
		id, err := l.Append(ctx, m, recordFor(m, ""))
		if err != nil {
			fail(err)
		}
		say("rec %d %d", id, i)
		tree, _, err := l.TreeHead(ctx)
		if err != nil {
			fail(err)
		}
		say("head %d %s", tree.N, tree.Hash)
	}
	for i := max(0, start-3); i < start; i++ {
		appendOne(i)
	}
	var next atomic.Int64
	next.Store(start)
	for range 2 {
		go func() {
			for {
				appendOne(next.Add(1) - 1)
			}
		}()
	}
	select {}
}

// TestCrashKill kills a child that appends in a loop at random moments
// (SIGKILL: no deferred code, no buffered writes flushed), reopens the log
// each time, and checks the invariants: every record whose Append returned
// is there with its exact text, the tree recomputed from the records is the
// signed one, every head ever seen is a prefix of the new tree, and a sumdb
// client that verified the log before every crash still accepts it.
func TestCrashKill(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes for several seconds")
	}
	runs := 20
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SUMLOG_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (set SUMLOG_CRASH_SEED to repeat the delays)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	k := newTestKey(t, testName)
	dir := t.TempDir()
	acked := map[int64]int64{} // k -> id
	heads := map[int64]tlog.Hash{}
	client := newTestClient(k.vkey)
	var total Recovery
	var killed, repaired, tmpRemoved int
	deadline := time.Now().Add(30 * time.Second)
	for run := 0; run < runs && time.Now().Before(deadline); run++ {
		delay := time.Duration(10+rng.IntN(400)) * time.Millisecond
		out, wasKilled := runCrashChild(t, dir, k, delay)
		if wasKilled {
			killed++
		}
		if err := parseChildOutput(k.verifier, out, acked, heads); err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out)
		}

		l, err := Open(dir, k.signer, k.verifier)
		if err != nil {
			t.Fatalf("run %d (killed after %v): reopen: %v", run, delay, err)
		}
		r := l.Recovery()
		if r.TornBytes+r.HashesRedone+r.HashesDropped+r.UnsignedTail > 0 || r.RemovedTmpFile {
			repaired++
		}
		total.TornBytes += r.TornBytes
		total.HashesRedone += r.HashesRedone
		total.HashesDropped += r.HashesDropped
		total.UnsignedTail += r.UnsignedTail
		if r.RemovedTmpFile {
			tmpRemoved++
		}
		t.Logf("run %2d: killed=%v after %v, %d records, recovery %+v", run, wasKilled, delay, r.Records, r)

		tree := verifyAll(t, l, k)
		for i, id := range acked {
			m := numbered(int(i))
			got, text, err := l.Lookup(context.Background(), m)
			if err != nil || got != id || !bytes.Equal(text, recordFor(m, "")) {
				t.Fatalf("run %d: acknowledged record %d (%v) lost or changed: %d, %q, %v", run, id, m, got, text, err)
			}
		}
		for n, h := range heads {
			checkExtends(t, l, tlog.Tree{N: n, Hash: h})
		}
		heads[tree.N] = tree.Hash
		client.serve(l.Handler())
		if tree.N > 0 {
			m := recordAt(t, l, tree.N-1)
			if _, err := client.lookup(m); err != nil {
				t.Fatalf("run %d: sumdb client: %v (security errors %q)", run, err, client.security)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d runs, %d killed, %d reopens repaired something; %d records acknowledged, %d heads checked; "+
		"in total %d torn bytes dropped, %d hashes redone, %d dropped, %d unsigned records signed, %d latest.tmp removed",
		runs, killed, repaired, len(acked), len(heads),
		total.TornBytes, total.HashesRedone, total.HashesDropped, total.UnsignedTail, tmpRemoved)
	if len(acked) == 0 {
		t.Fatal("the child never acknowledged a record")
	}
}

// runCrashChild runs the child until delay has passed, then kills it, and
// returns what it printed.
func runCrashChild(t *testing.T, dir string, k testKey, delay time.Duration) (out []byte, killed bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashSKey+"="+k.skey, envCrashVKey+"="+k.vkey)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("child exited by itself: %v\n%s%s", err, stdout.Bytes(), stderr.Bytes())
	case <-time.After(delay):
	}
	cmd.Process.Signal(syscall.SIGKILL)
	err := <-done
	ee, ok := err.(*exec.ExitError)
	killed = ok && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
	if !killed {
		t.Fatalf("child: %v\n%s%s", err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), killed
}

// parseChildOutput adds the child's acknowledged records and heads.
func parseChildOutput(v note.Verifier, out []byte, acked map[int64]int64, heads map[int64]tlog.Hash) error {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "rec":
			id, err1 := strconv.ParseInt(f[1], 10, 64)
			i, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("bad line %q", sc.Text())
			}
			if old, ok := acked[i]; ok && old != id {
				return fmt.Errorf("record %d acknowledged as id %d, earlier as %d", i, id, old)
			}
			acked[i] = id
		case len(f) == 3 && f[0] == "head":
			n, err := strconv.ParseInt(f[1], 10, 64)
			h, err2 := base64.StdEncoding.DecodeString(f[2])
			if err != nil || err2 != nil || len(h) != tlog.HashSize {
				return fmt.Errorf("bad line %q", sc.Text())
			}
			if old, ok := heads[n]; ok && old != tlog.Hash(h) {
				return fmt.Errorf("fork: two heads of size %d: %v, %v", n, old, tlog.Hash(h))
			}
			heads[n] = tlog.Hash(h)
		case len(f) == 2 && f[0] == "ready":
		default:
			return fmt.Errorf("child said %q", sc.Text())
		}
	}
	return nil
}

// recordAt returns the module version of record id.
func recordAt(t *testing.T, l *Log, id int64) module.Version {
	t.Helper()
	texts, err := serverOps{l}.ReadRecords(context.Background(), id, 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseRecord(texts[0])
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestOpenLockedByOtherProcess: while a child process has the log open, Open
// here fails with ErrLocked; once the child is killed, the kernel releases
// its lock and Open succeeds.
func TestOpenLockedByOtherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	k := newTestKey(t, testName)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashSKey+"="+k.skey, envCrashVKey+"="+k.vkey)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if !strings.HasPrefix(line, "ready ") {
		stop()
		t.Fatalf("child said %q, %v", line, err)
	}
	_, err = Open(dir, k.signer, k.verifier)
	stop()
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while another process has the log = %v, want ErrLocked", err)
	}
	t.Logf("Open: %v", err)
	l := openTestLog(t, dir, k)
	verifyAll(t, l, k)
}
