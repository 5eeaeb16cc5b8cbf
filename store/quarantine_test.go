package store_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/store"
)

func TestQuarantineHidesAndRestores(t *testing.T) {
	ctx := context.Background()
	d := openStore(t)
	path := "example.com/q"
	for _, v := range []string{"v1.0.0", "v1.1.0", "v1.2.0"} {
		publish(t, d, newVersion(t, module.Version{Path: path, Version: v}))
	}
	m := module.Version{Path: path, Version: "v1.2.0"}
	before := snapshot(t, d.Root())

	q := store.Quarantine{Reason: "signer key revoked", Findings: []string{"a", "b"}, Time: time.Unix(1700000000, 0).UTC(), Run: "r1"}
	if err := d.SetQuarantine(ctx, m, q); err != nil {
		t.Fatal(err)
	}
	got, err := d.Quarantined(ctx, m)
	if err != nil || got == nil || got.Reason != q.Reason || got.Run != "r1" || len(got.Findings) != 2 {
		t.Fatalf("Quarantined = %+v, %v", got, err)
	}
	// The same through the version's Files; another version is not.
	for v, want := range map[string]string{"v1.2.0": q.Reason, "v1.1.0": ""} {
		files, err := d.OpenVersion(ctx, module.Version{Path: path, Version: v})
		if err != nil {
			t.Fatal(err)
		}
		got, err := files.Quarantined()
		files.Close()
		if err != nil || (got == nil) != (want == "") || got != nil && (got.Reason != want || got.Run != "r1") {
			t.Errorf("Files.Quarantined of %s = %+v, %v, want reason %q", v, got, err, want)
		}
	}
	vs, err := d.Versions(ctx, path)
	if err != nil || !slices.Equal(vs, []string{"v1.0.0", "v1.1.0"}) {
		t.Fatalf("Versions while quarantined = %v, %v", vs, err)
	}
	if qs, err := d.QuarantinedVersions(ctx, path); err != nil || !slices.Equal(qs, []string{"v1.2.0"}) {
		t.Fatalf("QuarantinedVersions = %v, %v", qs, err)
	}
	// Nothing published was changed or removed: the files are all there,
	// the list file is the same, the version is still Walked.
	after := snapshot(t, d.Root())
	for name, data := range before {
		if after[name] != data {
			t.Errorf("%s changed by the quarantine", name)
		}
	}
	var walked []string
	d.Walk(ctx, func(m module.Version) error { walked = append(walked, m.Version); return nil })
	if len(walked) != 3 {
		t.Errorf("Walk = %v, want all three versions", walked)
	}
	if _, err := d.Lookup(ctx, m); err != nil {
		t.Errorf("Lookup of a quarantined version: %v (it is still published: immutability must see it)", err)
	}

	// Republishing the same version does not lift the quarantine.
	publish(t, d, newVersion(t, m))
	if got, _ := d.Quarantined(ctx, m); got == nil {
		t.Error("republish lifted the quarantine")
	}

	ok, err := d.ClearQuarantine(ctx, m)
	if err != nil || !ok {
		t.Fatalf("ClearQuarantine = %v, %v", ok, err)
	}
	if ok, err := d.ClearQuarantine(ctx, m); err != nil || ok {
		t.Fatalf("second ClearQuarantine = %v, %v", ok, err)
	}
	vs, _ = d.Versions(ctx, path)
	if !slices.Equal(vs, []string{"v1.0.0", "v1.1.0", "v1.2.0"}) {
		t.Fatalf("Versions after restore = %v", vs)
	}
	if qs, err := d.QuarantinedVersions(ctx, path); err != nil || qs != nil {
		t.Fatalf("QuarantinedVersions after restore = %v, %v", qs, err)
	}
	if _, err := d.QuarantinedVersions(ctx, "example.com/none"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("QuarantinedVersions of a module never published: %v, want not exist", err)
	}
}

func TestQuarantineRefusals(t *testing.T) {
	ctx := context.Background()
	d := openStore(t)
	m := module.Version{Path: "example.com/q", Version: "v1.0.0"}
	if err := d.SetQuarantine(ctx, m, store.Quarantine{Reason: "x"}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("quarantine of an unpublished version: %v, want not exist", err)
	}
	publish(t, d, newVersion(t, m))
	if err := d.SetQuarantine(ctx, m, store.Quarantine{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("quarantine without reason: %v", err)
	}
	// A damaged marker still quarantines.
	loc := d.Root() + "/example.com/q/@v/v1.0.0" + store.StateQuarantine
	if err := os.WriteFile(loc, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	q, err := d.Quarantined(ctx, m)
	if err != nil || q == nil {
		t.Fatalf("damaged marker: %+v, %v", q, err)
	}
	if vs, _ := d.Versions(ctx, m.Path); len(vs) != 0 {
		t.Errorf("Versions = %v with a damaged marker", vs)
	}
}

func TestWriteReverified(t *testing.T) {
	ctx := context.Background()
	d := openStore(t)
	m := module.Version{Path: "example.com/q", Version: "v1.0.0"}
	if err := d.WriteReverified(ctx, m, []byte("x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unpublished: %v", err)
	}
	publish(t, d, newVersion(t, m))
	for _, s := range []string{"first\n", "second\n"} {
		if err := d.WriteReverified(ctx, m, []byte(s)); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(d.Root() + "/example.com/q/@v/v1.0.0" + store.StateReverified)
		if err != nil || string(data) != s {
			t.Fatalf("reverified = %q, %v", data, err)
		}
	}
}

// TestQuarantineMarkerUnreadable: a marker that does not parse still
// quarantines (deny by default), read either way.
func TestQuarantineMarkerUnreadable(t *testing.T) {
	ctx := context.Background()
	d := openStore(t)
	m := module.Version{Path: "example.com/q", Version: "v1.0.0"}
	publish(t, d, newVersion(t, m))
	marker := filepath.Join(d.Root(), "example.com", "q", "@v", "v1.0.0"+store.StateQuarantine)
	if err := os.WriteFile(marker, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := d.OpenVersion(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	viaFiles, err1 := files.Quarantined()
	viaDir, err2 := d.Quarantined(ctx, m)
	for _, q := range []*store.Quarantine{viaFiles, viaDir} {
		if q == nil || !strings.Contains(q.Reason, "unreadable") {
			t.Errorf("unreadable marker: %+v (%v, %v), want a quarantine saying it is unreadable", q, err1, err2)
		}
	}
}

// TestWriteReverifiedBatch: one envelope becomes the summary of every
// version of a batch, across modules, replacing the last one; nothing
// temporary is left; a version not published is never served one.
func TestWriteReverifiedBatch(t *testing.T) {
	ctx := context.Background()
	d := openStore(t)
	ms := []module.Version{
		{Path: "example.com/q", Version: "v1.0.0"},
		{Path: "example.com/r", Version: "v0.1.0"},
		{Path: "example.com/q", Version: "v1.1.0-Pre"}, // escaped on disk: v1.1.0-!pre
	}
	for _, m := range ms {
		publish(t, d, newVersion(t, m))
	}
	before := snapshot(t, d.Root())
	for _, s := range []string{"first\n", "second\n"} {
		if err := d.WriteReverifiedBatch(ctx, ms, []byte(s)); err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			files, err := d.OpenVersion(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			data, err := files.ReadFile(store.StateReverified, 1<<10, nil)
			files.Close()
			if err != nil || string(data) != s {
				t.Errorf("%v: reverified = %q, %v, want %q", m, data, err, s)
			}
		}
	}
	after := snapshot(t, d.Root())
	for name, data := range after {
		if strings.Contains(name, "tmp") || strings.Contains(name, "batch-") {
			t.Errorf("left behind: %s", name)
		}
		if old, ok := before[name]; ok && old != data {
			t.Errorf("%s changed by the batch", name)
		}
	}
	// The caller names published versions; for one that is not, nothing is
	// served, and a module that does not exist is an error.
	unpublished := module.Version{Path: "example.com/q", Version: "v1.9.0"}
	if err := d.WriteReverifiedBatch(ctx, append(ms[:1:1], unpublished), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if f, err := d.OpenFile(ctx, unpublished, store.StateReverified); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the summary of an unpublished version is served: %v, %v", f, err)
	}
	if err := d.WriteReverifiedBatch(ctx, []module.Version{{Path: "example.com/none", Version: "v1.0.0"}}, []byte("x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("batch for a module not in the store: %v, want fs.ErrNotExist", err)
	}
}
