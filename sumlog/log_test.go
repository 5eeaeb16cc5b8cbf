package sumlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestAppendLookup(t *testing.T) {
	ctx := context.Background()
	k := newTestKey(t, testName)
	dir := t.TempDir()
	l := openTestLog(t, dir, k)
	if l.Size() != 0 {
		t.Fatalf("new log Size = %d", l.Size())
	}
	verifyAll(t, l, k)

	var heads []tlog.Tree
	for i := range 5 {
		m := numbered(i)
		id := mustAppend(t, l, m, recordFor(m, ""))
		if id != int64(i) {
			t.Fatalf("Append #%d = id %d", i, id)
		}
		heads = append(heads, verifyAll(t, l, k))
	}
	for _, h := range heads {
		checkExtends(t, l, h)
	}

	// Idempotent: same text, same id, no new record.
	m := numbered(2)
	if id := mustAppend(t, l, m, recordFor(m, "")); id != 2 || l.Size() != 5 {
		t.Fatalf("second Append = %d, size %d; want 2, 5", id, l.Size())
	}

	// Conflict: a different text for the same version.
	_, err := l.Append(ctx, m, recordFor(m, "moved tag"))
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("conflicting Append = %v, want ErrConflict", err)
	}
	oldZip, _ := recordHashes(recordFor(m, ""))
	newZip, _ := recordHashes(recordFor(m, "moved tag"))
	for _, want := range []string{m.Path, m.Version, oldZip, newZip} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("conflict error does not mention %s: %v", want, err)
		}
	}
	if _, text, _ := l.Lookup(ctx, m); !bytes.Equal(text, recordFor(m, "")) {
		t.Fatalf("record changed after conflict: %q", text)
	}

	_, _, err = l.Lookup(ctx, module.Version{Path: "corp.example/absent", Version: "v1.0.0"})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "corp.example/absent@v1.0.0") {
		t.Fatalf("Lookup of absent version = %v", err)
	}

	// Proofs of every record in every tree size, as `modgate verify` uses them.
	tree, _, _ := l.TreeHead(ctx)
	for tsize := int64(1); tsize <= tree.N; tsize++ {
		th := heads[tsize-1].Hash
		for id := range tsize {
			_, text, err := l.Lookup(ctx, numbered(int(id)))
			if err != nil {
				t.Fatal(err)
			}
			p, err := l.ProveRecord(tsize, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(p, tsize, th, id, tlog.RecordHash(text)); err != nil {
				t.Fatalf("record %d in tree %d: %v", id, tsize, err)
			}
		}
	}
	if _, err := l.ProveRecord(tree.N+1, 0); err == nil {
		t.Error("ProveRecord past the tree succeeded")
	}
	if _, err := l.ProveTree(tree.N+1, 1); err == nil {
		t.Error("ProveTree past the tree succeeded")
	}

	// Everything survives a clean reopen, with nothing to repair.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Lookup(ctx, m); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Lookup after Close = %v", err)
	}
	if _, err := l.Append(ctx, numbered(9), recordFor(numbered(9), "")); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Append after Close = %v", err)
	}
	l2 := openTestLog(t, dir, k)
	if r := l2.Recovery(); r != (Recovery{Records: 5}) {
		t.Errorf("Recovery after clean close = %+v", r)
	}
	if got := verifyAll(t, l2, k); got != heads[4] {
		t.Fatalf("reopened head %v, want %v", got, heads[4])
	}
	if id := mustAppend(t, l2, numbered(5), recordFor(numbered(5), "")); id != 5 {
		t.Fatalf("Append after reopen = %d", id)
	}
}

func TestOpenLocks(t *testing.T) {
	k := newTestKey(t, testName)
	dir := t.TempDir()
	l := openTestLog(t, dir, k)
	if _, err := Open(dir, k.signer, k.verifier); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	l.Close()
	l2, err := Open(dir, k.signer, k.verifier)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	l2.Close()
}

func TestOpenChecksKeys(t *testing.T) {
	k := newTestKey(t, testName)
	other := newTestKey(t, testName)
	if _, err := Open(t.TempDir(), k.signer, other.verifier); err == nil {
		t.Error("Open with a verifier of another key succeeded")
	}
	if _, err := Open(t.TempDir(), nil, k.verifier); err == nil {
		t.Error("Open without a signer succeeded")
	}
	// A head signed by another key: not this log's.
	dir := t.TempDir()
	openTestLog(t, dir, other).Close()
	if _, err := Open(dir, k.signer, k.verifier); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open of a log signed by another key = %v, want ErrCorrupt", err)
	}
}

func TestGenerateKey(t *testing.T) {
	for _, name := range []string{"sum.corp.example", "corp.example/sumdb", "localhost:8080/x"} {
		skey, vkey, err := GenerateKey(name)
		if err != nil {
			t.Errorf("GenerateKey(%q): %v", name, err)
			continue
		}
		k := parseTestKey(t, skey, vkey)
		if k.verifier.Name() != name || !strings.HasPrefix(vkey, name+"+") {
			t.Errorf("GenerateKey(%q) = %q", name, vkey)
		}
	}
	for _, name := range []string{"", "a b", "a+b", "corp.example/", "https://corp.example", "corp.example?x", "corp.example#x", "corp.example/%41", "user@corp.example", "/x", "é.example",
		"Corp.example", "corp.example//x", "corp.example/../x", "corp.example/./x", "corp.example:", "corp.example:x", "corp.example/a%2Fb"} {
		if _, _, err := GenerateKey(name); err == nil {
			t.Errorf("GenerateKey(%q) succeeded", name)
		}
	}
}

// TestConcurrent appends from several goroutines while others read through
// every read path; run with -race.
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	k := newTestKey(t, testName)
	l := openTestLog(t, t.TempDir(), k)
	const writers, each = 4, 8
	var wg sync.WaitGroup
	ids := make([][]int64, writers)
	stop := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				// Two writers race on every version, so idempotence is exercised too.
				m := numbered((w/2)*each + i)
				id, err := l.Append(ctx, m, recordFor(m, ""))
				if err != nil {
					t.Error(err)
					return
				}
				ids[w] = append(ids[w], id)
			}
		})
	}
	var readers sync.WaitGroup
	for range 3 {
		readers.Go(func() {
			srv := serverOps{l}
			for {
				select {
				case <-stop:
					return
				default:
				}
				tree, signed, err := l.TreeHead(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := note.Open(signed, note.VerifierList(k.verifier)); err != nil {
					t.Error(err)
					return
				}
				if tree.N == 0 {
					continue
				}
				if _, err := srv.ReadRecords(ctx, 0, tree.N); err != nil {
					t.Error(err)
					return
				}
				if _, err := srv.ReadTileData(ctx, tlog.TileForIndex(8, tlog.StoredHashIndex(0, tree.N-1))); err != nil {
					t.Error(err)
					return
				}
				p, err := l.ProveRecord(tree.N, tree.N-1)
				if err != nil {
					t.Error(err)
					return
				}
				texts, _ := srv.ReadRecords(ctx, tree.N-1, 1)
				if err := tlog.CheckRecord(p, tree.N, tree.Hash, tree.N-1, tlog.RecordHash(texts[0])); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if l.Size() != writers/2*each {
		t.Fatalf("Size = %d, want %d", l.Size(), writers/2*each)
	}
	for w := 0; w < writers; w += 2 {
		if fmt.Sprint(ids[w]) != fmt.Sprint(ids[w+1]) {
			t.Errorf("writers appending the same versions got ids %v and %v", ids[w], ids[w+1])
		}
	}
	verifyAll(t, l, k)
}

func TestAppendCanceled(t *testing.T) {
	k := newTestKey(t, testName)
	l := openTestLog(t, t.TempDir(), k)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := numbered(0)
	if _, err := l.Append(ctx, m, recordFor(m, "")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with canceled context = %v", err)
	}
	if l.Size() != 0 {
		t.Fatal("canceled Append appended")
	}
	mustAppend(t, l, m, recordFor(m, ""))
}
