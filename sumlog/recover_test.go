package sumlog

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

var errCrash = errors.New("crash")

// TestCrashAtEachStep stops an Append after each of its steps, as a crash
// would, then reopens: the record is in the log exactly when its data was
// durable, the tree extends the head served before, and the log appends.
func TestCrashAtEachStep(t *testing.T) {
	for _, step := range []string{"records", "hashes", "latest"} {
		t.Run(step, func(t *testing.T) {
			ctx := context.Background()
			k := newTestKey(t, testName)
			dir := t.TempDir()
			l := openTestLog(t, dir, k)
			for i := range 3 {
				mustAppend(t, l, numbered(i), recordFor(numbered(i), ""))
			}
			before := verifyAll(t, l, k)
			l.testHookAfter = func(s string) error {
				if s == step {
					return errCrash
				}
				return nil
			}
			m := numbered(3)
			if _, err := l.Append(ctx, m, recordFor(m, "")); !errors.Is(err, errCrash) {
				t.Fatalf("Append = %v, want the crash", err)
			}
			// The crashed Log still serves what it committed, and refuses
			// to write over a tail it no longer knows.
			if got := verifyAll(t, l, k); got != before {
				t.Fatalf("head after failed Append = %v, want %v", got, before)
			}
			if _, err := l.Append(ctx, numbered(4), recordFor(numbered(4), "")); !errors.Is(err, ErrBroken) {
				t.Fatalf("Append after a failed write = %v, want ErrBroken", err)
			}
			l.Close()

			l2 := openTestLog(t, dir, k)
			after := verifyAll(t, l2, k)
			checkExtends(t, l2, before)
			// Every step here is after the record's fsync: it is durable.
			if after.N != 4 {
				t.Fatalf("after crash at %s: %d records, want 4", step, after.N)
			}
			r := l2.Recovery()
			wantUnsigned := int64(1)
			if step == "latest" {
				wantUnsigned = 0
			}
			if r.UnsignedTail != wantUnsigned {
				t.Errorf("Recovery = %+v, want UnsignedTail %d", r, wantUnsigned)
			}
			if id := mustAppend(t, l2, m, recordFor(m, "")); id != 3 {
				t.Errorf("retried Append = id %d, want 3", id)
			}
			if _, err := l2.Append(ctx, m, recordFor(m, "other")); !errors.Is(err, ErrConflict) {
				t.Errorf("conflicting retry = %v", err)
			}
			mustAppend(t, l2, numbered(4), recordFor(numbered(4), ""))
			verifyAll(t, l2, k)
		})
	}
}

// crashFixture is a closed log of n records and the paths of its files.
type crashFixture struct {
	k                       testKey
	dir                     string
	records, hashes, latest string
	head                    tlog.Tree
	n                       int
}

func newFixture(t *testing.T, n int) *crashFixture {
	t.Helper()
	k := newTestKey(t, testName)
	dir := t.TempDir()
	l, err := Open(dir, k.signer, k.verifier)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		mustAppend(t, l, numbered(i), recordFor(numbered(i), ""))
	}
	head := verifyAll(t, l, k)
	l.Close()
	return &crashFixture{k, dir, filepath.Join(dir, recordsName), filepath.Join(dir, hashesName), filepath.Join(dir, latestName), head, n}
}

func (f *crashFixture) open(t *testing.T) (*Log, error) {
	l, err := Open(f.dir, f.k.signer, f.k.verifier)
	if err == nil {
		t.Cleanup(func() { l.Close() })
	}
	return l, err
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, name string, b []byte) {
	t.Helper()
	writeFile(t, name, append(readFile(t, name), b...))
}

// TestOpenRepairsTornTails: what a crash in the middle of an Append leaves
// is repaired, and no committed record is lost.
func TestOpenRepairsTornTails(t *testing.T) {
	next := encodeEntry(5, recordFor(numbered(5), ""))
	tests := []struct {
		name  string
		tear  func(t *testing.T, f *crashFixture)
		wantN int64
		check func(t *testing.T, r Recovery)
	}{
		{"partial entry header", func(t *testing.T, f *crashFixture) {
			appendFile(t, f.records, next[:7])
		}, 5, func(t *testing.T, r Recovery) {
			if r.TornBytes != 7 {
				t.Errorf("TornBytes = %d, want 7", r.TornBytes)
			}
		}},
		{"partial entry", func(t *testing.T, f *crashFixture) {
			appendFile(t, f.records, next[:len(next)-1])
		}, 5, nil},
		{"zeroed entry", func(t *testing.T, f *crashFixture) {
			appendFile(t, f.records, make([]byte, len(next)))
		}, 5, nil},
		{"entry with bad checksum", func(t *testing.T, f *crashFixture) {
			bad := bytes.Clone(next)
			bad[len(bad)-3] ^= 1
			appendFile(t, f.records, bad)
		}, 5, nil},
		{"entry with huge length", func(t *testing.T, f *crashFixture) {
			appendFile(t, f.records, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 'x'})
		}, 5, nil},
		{"hashes behind", func(t *testing.T, f *crashFixture) {
			h := readFile(t, f.hashes)
			writeFile(t, f.hashes, h[:len(h)-tlog.HashSize-5])
		}, 5, func(t *testing.T, r Recovery) {
			if r.HashesRedone != 2 {
				t.Errorf("HashesRedone = %d, want 2", r.HashesRedone)
			}
		}},
		{"hashes missing", func(t *testing.T, f *crashFixture) {
			os.Remove(f.hashes)
		}, 5, nil},
		{"hashes ahead", func(t *testing.T, f *crashFixture) {
			appendFile(t, f.hashes, bytes.Repeat([]byte{7}, 3*tlog.HashSize+1))
		}, 5, func(t *testing.T, r Recovery) {
			if r.HashesDropped != 3 {
				t.Errorf("HashesDropped = %d, want 3", r.HashesDropped)
			}
		}},
		{"hashes garbled", func(t *testing.T, f *crashFixture) {
			h := readFile(t, f.hashes)
			h[40] ^= 1
			writeFile(t, f.hashes, h)
		}, 5, nil},
		{"record durable, head not written", func(t *testing.T, f *crashFixture) {
			// A whole entry and its hashes, but latest still at 5: the
			// crash came between the fsyncs and the rename.
			appendFile(t, f.records, next)
		}, 6, func(t *testing.T, r Recovery) {
			if r.UnsignedTail != 1 || r.HashesRedone == 0 {
				t.Errorf("Recovery = %+v, want a signed tail of 1 and hashes redone", r)
			}
		}},
		{"temporary head left", func(t *testing.T, f *crashFixture) {
			writeFile(t, filepath.Join(f.dir, latestTmpName), []byte("half a no"))
		}, 5, func(t *testing.T, r Recovery) {
			if !r.RemovedTmpFile {
				t.Error("latest.tmp not reported")
			}
		}},
		{"head missing", func(t *testing.T, f *crashFixture) {
			os.Remove(f.latest)
		}, 5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 5)
			tt.tear(t, f)
			l, err := f.open(t)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if tt.check != nil {
				tt.check(t, l.Recovery())
			}
			got := verifyAll(t, l, f.k)
			if got.N != tt.wantN {
				t.Fatalf("%d records after repair, want %d", got.N, tt.wantN)
			}
			checkExtends(t, l, f.head)
			// The files are whole again: the log appends, and a second
			// Open has nothing to repair.
			mustAppend(t, l, numbered(7), recordFor(numbered(7), ""))
			want := verifyAll(t, l, f.k)
			l.Close()
			l2, err := f.open(t)
			if err != nil {
				t.Fatal(err)
			}
			if r := l2.Recovery(); r != (Recovery{Records: want.N}) {
				t.Errorf("second Recovery = %+v", r)
			}
			if got := verifyAll(t, l2, f.k); got != want {
				t.Errorf("head %v after reopen, want %v", got, want)
			}
		})
	}
}

// TestOpenRefusesRollback: records that no longer hash to the persisted
// head make Open fail, and leave the files as they were for an operator.
func TestOpenRefusesRollback(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, f *crashFixture)
	}{
		{"last record truncated", func(t *testing.T, f *crashFixture) {
			r := readFile(t, f.records)
			writeFile(t, f.records, r[:len(r)-1])
		}},
		{"last record removed", func(t *testing.T, f *crashFixture) {
			r := readFile(t, f.records)
			last := encodeEntry(int64(f.n-1), recordFor(numbered(f.n-1), ""))
			writeFile(t, f.records, r[:len(r)-len(last)])
		}},
		{"records emptied", func(t *testing.T, f *crashFixture) {
			writeFile(t, f.records, nil)
		}},
		{"records deleted", func(t *testing.T, f *crashFixture) {
			os.Remove(f.records)
		}},
		{"bit flipped in a record", func(t *testing.T, f *crashFixture) {
			r := readFile(t, f.records)
			r[len(recordsHeader)+entryHeader+3] ^= 0x20
			writeFile(t, f.records, r)
		}},
		{"record rewritten with a valid checksum", func(t *testing.T, f *crashFixture) {
			var r []byte
			r = append(r, recordsHeader...)
			for i := range f.n {
				seed := ""
				if i == 2 {
					seed = "moved tag"
				}
				r = append(r, encodeEntry(int64(i), recordFor(numbered(i), seed))...)
			}
			writeFile(t, f.records, r)
		}},
		{"records swapped", func(t *testing.T, f *crashFixture) {
			var r []byte
			r = append(r, recordsHeader...)
			for i := range f.n {
				j := i
				if i < 2 {
					j = 1 - i
				}
				r = append(r, encodeEntry(int64(i), recordFor(numbered(j), ""))...)
			}
			writeFile(t, f.records, r)
		}},
		{"not a records file", func(t *testing.T, f *crashFixture) {
			r := readFile(t, f.records)
			r[0] = 'M'
			writeFile(t, f.records, r)
		}},
		{"head changed", func(t *testing.T, f *crashFixture) {
			b := bytes.Replace(readFile(t, f.latest), []byte("\n5\n"), []byte("\n4\n"), 1)
			writeFile(t, f.latest, b)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 5)
			tt.damage(t, f)
			files := map[string][]byte{}
			for _, name := range []string{f.records, f.hashes, f.latest} {
				files[name], _ = os.ReadFile(name)
			}
			_, err := f.open(t)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
			t.Logf("Open: %v", err)
			for name, want := range files {
				got, err := os.ReadFile(name)
				if err != nil && !errors.Is(err, fs.ErrNotExist) || !bytes.Equal(got, want) {
					t.Errorf("failed Open changed %s", filepath.Base(name))
				}
			}
			// The lock was released: the operator can try again.
			if _, err := f.open(t); errors.Is(err, ErrLocked) {
				t.Error("failed Open kept the lock")
			}
		})
	}
}

// TestOpenNewLogInterrupted: a crash while a new log was being created
// (header torn, no latest yet) is just an empty log.
func TestOpenNewLogInterrupted(t *testing.T) {
	k := newTestKey(t, testName)
	dir := t.TempDir()
	for _, torn := range []string{recordsHeader[:9], "\x00\x00\x00\x00\x00"} {
		writeFile(t, filepath.Join(dir, recordsName), []byte(torn))
		os.Remove(filepath.Join(dir, latestName))
		l := openTestLog(t, dir, k)
		if l.Size() != 0 || !l.Recovery().CreatedLatest {
			t.Fatalf("Size %d, Recovery %+v", l.Size(), l.Recovery())
		}
		mustAppend(t, l, numbered(0), recordFor(numbered(0), ""))
		verifyAll(t, l, k)
		l.Close()
	}
}
