package store_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"slices"
	"testing"

	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/store/storetest"
)

var errCrash = errors.New("crash")

// TestCrashAtEachStep stops a publish after each of its steps, as a crash
// would, and checks the invariant: the version is either not visible at all
// or complete and recorded in the checksum log, and a second Publish (a
// redelivered job, in a new process) finishes it.
func TestCrashAtEachStep(t *testing.T) {
	steps := []string{"zip", "ziphash", "mod", "doc" + store.DocSPDX, "doc" + store.DocSPDXSig, "record", "info", "list"}
	for i, step := range steps {
		t.Run(step, func(t *testing.T) {
			ctx := context.Background()
			d := openStore(t)
			v := newVersion(t, hello)
			v.Docs = map[string][]byte{store.DocSPDX: []byte("sbom"), store.DocSPDXSig: []byte("sig")}
			recorded := 0 // appends to a stand-in checksum log
			v.Record = func(context.Context) error { recorded++; return nil }
			var ran []string
			store.SetTestHookAfter(d, func(s string) error {
				ran = append(ran, s)
				if s == step {
					return errCrash
				}
				return nil
			})
			created, err := d.Publish(ctx, v)
			if created || !errors.Is(err, errCrash) {
				t.Fatalf("Publish = %v, %v; want the crash", created, err)
			}
			if !slices.Equal(ran, steps[:i+1]) {
				t.Errorf("steps ran %q, want %q", ran, steps[:i+1])
			}

			infoWritten := i >= slices.Index(steps, "info")
			p, err := d.Lookup(ctx, hello)
			switch {
			case infoWritten && err != nil:
				t.Fatalf("Lookup after .info: %v", err)
			case infoWritten:
				checkComplete(t, d, v)
			case !errors.Is(err, fs.ErrNotExist):
				t.Fatalf("Lookup before .info = %+v, %v; want fs.ErrNotExist", p, err)
			default:
				for _, s := range store.AllSuffixes() {
					if _, err := d.OpenFile(ctx, hello, s); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("OpenFile(%s) of unpublished version: %v", s, err)
					}
				}
			}
			listed, _ := d.Versions(ctx, hello.Path)
			if slices.Contains(listed, hello.Version) != (step == "list") {
				t.Errorf("after crash at %s, list = %v", step, listed)
			}
			if wantRecorded := i >= slices.Index(steps, "record"); (recorded > 0) != wantRecorded {
				t.Errorf("after crash at %s, recorded %d times", step, recorded)
			}
			// A version that can be served has its checksum log record: a
			// go command fetching it by version (no list needed) must be
			// able to look it up.
			if infoWritten && recorded == 0 {
				t.Errorf("after crash at %s, the version is served but not recorded", step)
			}

			// A new process finishes the job.
			before := snapshot(t, d.Root())
			d2, err := store.Open(d.Root())
			if err != nil {
				t.Fatal(err)
			}
			created, err = d2.Publish(ctx, v)
			if err != nil {
				t.Fatalf("second Publish: %v", err)
			}
			if infoWritten {
				// Published already: only the list may change.
				after := snapshot(t, d.Root())
				delete(before, "example.com/hello/@v/list")
				delete(after, "example.com/hello/@v/list")
				if !maps.Equal(before, after) {
					t.Errorf("second Publish rewrote published files")
				}
			}
			if created == infoWritten {
				t.Errorf("second Publish created = %v, want %v", created, !infoWritten)
			}
			checkComplete(t, d2, v)
			if recorded == 0 {
				t.Errorf("second Publish listed the version without recording it")
			}
			listed, _ = d2.Versions(ctx, hello.Path)
			if !slices.Equal(listed, []string{hello.Version}) {
				t.Errorf("list after second Publish = %v", listed)
			}
		})
	}
}

// TestCrashLeftoverDocNotAdopted: a document written by an interrupted
// publish must not become part of a later publish that did not offer it.
func TestCrashLeftoverDocNotAdopted(t *testing.T) {
	ctx := context.Background()
	d := openStore(t)
	v := newVersion(t, hello)
	v.Docs = map[string][]byte{store.DocSPDX: []byte("stale sbom")}
	store.SetTestHookAfter(d, func(s string) error {
		if s == "doc"+store.DocSPDX {
			return errCrash
		}
		return nil
	})
	if _, err := d.Publish(ctx, v); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	store.SetTestHookAfter(d, nil)
	v.Docs = nil
	if !publish(t, d, v) {
		t.Fatal("created = false")
	}
	if _, err := d.OpenFile(ctx, hello, store.DocSPDX); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leftover document is visible: %v", err)
	}
}

// TestCrashLeftoverReplaced: leftovers of an interrupted publish with other
// content are replaced by the next publish, since they were never visible.
func TestCrashLeftoverReplaced(t *testing.T) {
	ctx := context.Background()
	d := openStore(t)
	first := newVersion(t, hello)
	store.SetTestHookAfter(d, func(s string) error {
		if s == "mod" {
			return errCrash
		}
		return nil
	})
	if _, err := d.Publish(ctx, first); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	store.SetTestHookAfter(d, nil)
	files := helloFiles("second")
	files["go.mod"] = "module example.com/hello\n\ngo 1.22\n"
	second := storetest.Version(t, hello, files)
	if !publish(t, d, second) {
		t.Fatal("created = false")
	}
	checkComplete(t, d, second)
}

func checkComplete(t *testing.T, d *store.Dir, v *store.Version) {
	t.Helper()
	ctx := context.Background()
	p, err := d.Lookup(ctx, v.Module)
	if err != nil {
		t.Fatal(err)
	}
	if p.ZipHash != v.ZipHash || !bytes.Equal(p.Info, v.Info) {
		t.Errorf("Lookup = %+v, want zip %s", p, v.ZipHash)
	}
	want := map[string][]byte{".zip": mustRead(t, v.ZipFile), ".mod": v.Mod, ".info": v.Info, ".ziphash": []byte(v.ZipHash)}
	for s, data := range v.Docs {
		want[s] = data
	}
	for s, data := range want {
		f, err := d.OpenFile(ctx, v.Module, s)
		if err != nil {
			t.Errorf("OpenFile(%s): %v", s, err)
			continue
		}
		got := mustRead(t, f.Name())
		f.Close()
		if !bytes.Equal(got, data) {
			t.Errorf("%s differs from what was published", s)
		}
	}
}
