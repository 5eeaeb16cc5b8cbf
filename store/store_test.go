package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/store/storetest"
	"golang.org/x/mod/module"
)

var hello = module.Version{Path: "example.com/hello", Version: "v1.0.0"}

func helloFiles(version string) map[string]string {
	return map[string]string{
		"go.mod":   "module example.com/hello\n\ngo 1.21\n",
		"hello.go": "package hello\n\n// Version is the module version.\nconst Version = \"" + version + "\"\n",
	}
}

func newVersion(t testing.TB, m module.Version) *store.Version {
	files := helloFiles(m.Version)
	files["go.mod"] = "module " + m.Path + "\n\ngo 1.21\n"
	return storetest.Version(t, m, files)
}

func openStore(t testing.TB) *store.Dir {
	t.Helper()
	d, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func publish(t testing.TB, d *store.Dir, v *store.Version) bool {
	t.Helper()
	created, err := d.Publish(context.Background(), v)
	if err != nil {
		t.Fatalf("Publish(%s): %v", v.Module, err)
	}
	return created
}

// fileState is what must not change about a published file.
type fileState struct {
	data  string
	mode  fs.FileMode
	mtime int64
	ino   uint64
}

// snapshot records every file under root but the lock file.
func snapshot(t testing.TB, root string) map[string]fileState {
	t.Helper()
	snap := make(map[string]fileState)
	err := filepath.WalkDir(root, func(name string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || e.Name() == ".modgate.lock" {
			return err
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(name)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, name)
		snap[filepath.ToSlash(rel)] = fileState{string(data), fi.Mode(), fi.ModTime().UnixNano(), inode(fi)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestPublishLayout(t *testing.T) {
	d := openStore(t)
	m := module.Version{Path: "example.com/Azure/hello", Version: "v1.1.0-RC1"}
	v := newVersion(t, m)
	v.Docs = map[string][]byte{store.DocSPDX: []byte(`{"spdxVersion":"SPDX-2.3"}`), store.DocInToto: []byte("{}\n")}
	if !publish(t, d, v) {
		t.Fatal("created = false for a new version")
	}

	dir := filepath.Join(d.Root(), "example.com", "!azure", "hello", "@v")
	base := filepath.Join(dir, "v1.1.0-!r!c1")
	want := map[string][]byte{
		base + ".zip":              mustRead(t, v.ZipFile),
		base + ".ziphash":          []byte(v.ZipHash), // as the go module cache keeps it: no newline
		base + ".mod":              v.Mod,
		base + ".info":             v.Info,
		base + ".spdx.json":        v.Docs[store.DocSPDX],
		base + ".intoto.jsonl":     v.Docs[store.DocInToto],
		filepath.Join(dir, "list"): []byte("v1.1.0-RC1\n"),
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("@v holds %q, want exactly %d files (no temporary files left)", names, len(want))
	}
	for name, data := range want {
		got := mustRead(t, name)
		if !bytes.Equal(got, data) {
			t.Errorf("%s = %q, want %q", name, got, data)
		}
		fi, _ := os.Stat(name)
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s mode = %v, want 0644", name, fi.Mode())
		}
	}

	p, err := d.Lookup(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if p.ZipHash != v.ZipHash || p.ModHash != storetest.ModHash(t, v.Mod) || !bytes.Equal(p.Info, v.Info) {
		t.Errorf("Lookup = %+v, want zip %s mod %s", p, v.ZipHash, storetest.ModHash(t, v.Mod))
	}
}

func TestLookupNotPublished(t *testing.T) {
	d := openStore(t)
	_, err := d.Lookup(context.Background(), hello)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Lookup of unknown version: %v, want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), "example.com/hello@v1.0.0") {
		t.Errorf("error %q does not name the module version", err)
	}
	if _, err := d.Versions(context.Background(), hello.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Versions of unknown module: %v, want fs.ErrNotExist", err)
	}
	if _, err := d.OpenFile(context.Background(), hello, ".zip"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenFile of unknown version: %v, want fs.ErrNotExist", err)
	}
}

func TestPublishAgainSameIsNoop(t *testing.T) {
	d := openStore(t)
	v := newVersion(t, hello)
	v.Docs = map[string][]byte{store.DocSPDX: []byte("sbom 1")}
	publish(t, d, v)
	before := snapshot(t, d.Root())

	// Same zip and go.mod, other documents and info time: still the same version.
	again := *v
	again.Info = []byte(`{"Version":"v1.0.0","Time":"2030-01-01T00:00:00Z"}`)
	again.Docs = map[string][]byte{store.DocSPDX: []byte("sbom 2"), store.DocVerdict: []byte("{}")}
	if publish(t, d, &again) {
		t.Error("created = true for an already published version")
	}
	if after := snapshot(t, d.Root()); !maps.Equal(before, after) {
		t.Errorf("store changed:\nbefore %v\nafter  %v", before, after)
	}
}

func TestPublishConflict(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, v *store.Version)
	}{
		{"zip", func(t *testing.T, v *store.Version) {
			files := helloFiles("moved")
			*v = *storetest.Version(t, hello, files)
		}},
		{"mod", func(t *testing.T, v *store.Version) {
			v.Mod = []byte("module example.com/hello\n\ngo 1.22\n")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := openStore(t)
			v := newVersion(t, hello)
			publish(t, d, v)
			before := snapshot(t, d.Root())

			moved := *v
			tc.change(t, &moved)
			created, err := d.Publish(context.Background(), &moved)
			if created || !errors.Is(err, store.ErrConflict) {
				t.Fatalf("Publish of moved version = %v, %v; want false, ErrConflict", created, err)
			}
			var ce *store.ConflictError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *ConflictError", err)
			}
			if ce.Module != hello || ce.Old.ZipHash != v.ZipHash || ce.New.ZipHash != moved.ZipHash ||
				ce.Old.ModHash != storetest.ModHash(t, v.Mod) || ce.New.ModHash != storetest.ModHash(t, moved.Mod) {
				t.Errorf("ConflictError = %+v", ce)
			}
			msg := err.Error()
			for _, s := range []string{"example.com/hello@v1.0.0", ce.Old.ZipHash, ce.New.ZipHash, ce.Old.ModHash, ce.New.ModHash} {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not mention %s", msg, s)
				}
			}
			if after := snapshot(t, d.Root()); !maps.Equal(before, after) {
				t.Errorf("store changed by a conflicting publish")
			}
		})
	}
}

func TestPublishRefuses(t *testing.T) {
	type change func(t *testing.T, v *store.Version)
	setModule := func(path, version string) change {
		return func(t *testing.T, v *store.Version) {
			v.Module = module.Version{Path: path, Version: version}
			v.Info = storetest.Info(version)
			v.Mod = []byte("module " + path + "\n")
		}
	}
	for _, tc := range []struct {
		name   string
		change change
		want   error
	}{
		{"path traversal", setModule("example.com/../../etc", "v1.0.0"), store.ErrInvalid},
		{"dot element", setModule("example.com/./x", "v1.0.0"), store.ErrInvalid},
		{"hidden element", setModule("example.com/.git", "v1.0.0"), store.ErrInvalid},
		{"absolute path", setModule("/etc/passwd", "v1.0.0"), store.ErrInvalid},
		{"upper case domain", setModule("Example.com/x", "v1.0.0"), store.ErrInvalid},
		{"no dot in domain", setModule("example/x", "v1.0.0"), store.ErrInvalid},
		{"backslash", setModule(`example.com/a\..\b`, "v1.0.0"), store.ErrInvalid},
		{"not semver", setModule("example.com/hello", "latest"), store.ErrInvalid},
		{"not canonical", setModule("example.com/hello", "v1.0"), store.ErrInvalid},
		{"build metadata", setModule("example.com/hello", "v1.0.0+build"), store.ErrInvalid},
		{"version traversal", setModule("example.com/hello", "v1.0.0-../../x"), store.ErrInvalid},
		{"major mismatch", setModule("example.com/hello/v2", "v1.0.0"), store.ErrInvalid},
		{"doc traversal", func(t *testing.T, v *store.Version) { v.Docs = map[string][]byte{"/../../../x": nil} }, store.ErrInvalid},
		{"doc not allowed", func(t *testing.T, v *store.Version) { v.Docs = map[string][]byte{".sh": nil} }, store.ErrInvalid},
		{"doc ziphash", func(t *testing.T, v *store.Version) { v.Docs = map[string][]byte{".ziphash": nil} }, store.ErrInvalid},
		{"doc info", func(t *testing.T, v *store.Version) { v.Docs = map[string][]byte{".info": nil} }, store.ErrInvalid},
		{"malformed zip hash", func(t *testing.T, v *store.Version) { v.ZipHash = "h1:abc" }, store.ErrInvalid},
		{"zip hash with newline", func(t *testing.T, v *store.Version) { v.ZipHash += "\n" }, store.ErrInvalid},
		{"info for other version", func(t *testing.T, v *store.Version) { v.Info = storetest.Info("v1.0.1") }, store.ErrInvalid},
		{"info not json", func(t *testing.T, v *store.Version) { v.Info = []byte("v1.0.0") }, store.ErrInvalid},
		{"go.mod for other module", func(t *testing.T, v *store.Version) { v.Mod = []byte("module example.com/other\n") }, store.ErrInvalid},
		{"go.mod not in zip", func(t *testing.T, v *store.Version) { v.Mod = []byte("module example.com/hello\n\ngo 1.99\n") }, store.ErrInvalid},
		{"zip hash mismatch", func(t *testing.T, v *store.Version) {
			v.ZipHash = storetest.Version(t, hello, helloFiles("other")).ZipHash
		}, store.ErrHashMismatch},
		{"zip of other module", func(t *testing.T, v *store.Version) {
			o := storetest.Version(t, module.Version{Path: "example.com/other", Version: "v1.0.0"}, nil)
			v.ZipFile, v.ZipHash = o.ZipFile, o.ZipHash
		}, store.ErrInvalid},
		{"not a zip", func(t *testing.T, v *store.Version) {
			v.ZipFile = filepath.Join(t.TempDir(), "x.zip")
			os.WriteFile(v.ZipFile, []byte("not a zip"), 0o644)
		}, store.ErrInvalid},
		{"zip is a directory", func(t *testing.T, v *store.Version) { v.ZipFile = t.TempDir() }, store.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := openStore(t)
			v := newVersion(t, hello)
			tc.change(t, v)
			created, err := d.Publish(context.Background(), v)
			if created || !errors.Is(err, tc.want) {
				t.Fatalf("Publish = %v, %v; want false, %v", created, err, tc.want)
			}
			if want := v.Module.Path + "@" + v.Module.Version; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
			var me *module.ModuleError
			if !errors.As(err, &me) || me.Path != v.Module.Path {
				t.Errorf("error %T is not a module.ModuleError for %s", err, v.Module.Path)
			}
			// Nothing visible, and nothing at all outside the root.
			var published []module.Version
			d.Walk(context.Background(), func(m module.Version) error { published = append(published, m); return nil })
			if len(published) != 0 {
				t.Errorf("published %v after a refused publish", published)
			}
			parent := filepath.Dir(d.Root())
			entries, _ := os.ReadDir(parent)
			if len(entries) != 1 {
				t.Errorf("files appeared beside the store root: %v", entries)
			}
			for name := range snapshot(t, d.Root()) {
				if strings.HasSuffix(name, ".info") || strings.HasSuffix(name, ".zip") || strings.HasSuffix(name, "/list") {
					t.Errorf("refused publish left %s", name)
				}
			}
		})
	}
}

func TestPublishNil(t *testing.T) {
	if _, err := openStore(t).Publish(context.Background(), nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Publish(nil) = %v, want ErrInvalid", err)
	}
}

func TestOpenFile(t *testing.T) {
	d := openStore(t)
	v := newVersion(t, hello)
	v.Docs = map[string][]byte{store.DocSPDXSig: []byte("sig")}
	publish(t, d, v)
	ctx := context.Background()
	for suffix, want := range map[string][]byte{".info": v.Info, ".mod": v.Mod, ".ziphash": []byte(v.ZipHash), store.DocSPDXSig: []byte("sig")} {
		f, err := d.OpenFile(ctx, hello, suffix)
		if err != nil {
			t.Fatalf("OpenFile %s: %v", suffix, err)
		}
		got := mustRead(t, f.Name())
		f.Close()
		if !bytes.Equal(got, want) {
			t.Errorf("OpenFile %s = %q, want %q", suffix, got, want)
		}
	}
	if _, err := d.OpenFile(ctx, hello, store.DocSPDX); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenFile of absent document: %v, want fs.ErrNotExist", err)
	}
	for _, suffix := range []string{"", "/../../x", ".lock", "list"} {
		if _, err := d.OpenFile(ctx, hello, suffix); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("OpenFile(%q) = %v, want ErrInvalid", suffix, err)
		}
	}

	// The same through one version's Files.
	files, err := d.OpenVersion(ctx, hello)
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	for suffix, want := range map[string][]byte{".info": v.Info, ".mod": v.Mod, ".ziphash": []byte(v.ZipHash), store.DocSPDXSig: []byte("sig")} {
		f, err := files.Open(suffix)
		if err != nil {
			t.Fatalf("Files.Open %s: %v", suffix, err)
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Files.Open %s = %q, %v, want %q", suffix, got, err, want)
		}
	}
	if _, err := files.Open(store.DocSPDX); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Files.Open of absent document: %v, want fs.ErrNotExist", err)
	}
	// ReadFile: the same bytes, in the buffer given when it is large enough.
	for suffix, want := range map[string][]byte{".info": v.Info, ".mod": v.Mod, ".ziphash": []byte(v.ZipHash), store.DocSPDXSig: []byte("sig")} {
		for _, buf := range [][]byte{nil, make([]byte, 0, 4096)} {
			got, err := files.ReadFile(suffix, 1<<20, buf)
			if err != nil || !bytes.Equal(got, want) || buf != nil && &got[0] != &buf[:1][0] {
				t.Errorf("Files.ReadFile %s (buffer of %d) = %q, %v, want %q in the buffer", suffix, cap(buf), got, err, want)
			}
		}
	}
	if _, err := files.ReadFile(".mod", int64(len(v.Mod))-1, nil); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("Files.ReadFile over the limit: %v, want ErrTooLarge", err)
	}
	if _, err := files.ReadFile(store.DocSPDX, 1<<20, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Files.ReadFile of absent document: %v, want fs.ErrNotExist", err)
	}
	if _, err := files.ReadFile("list", 1<<20, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Files.ReadFile(list): %v, want ErrInvalid", err)
	}
	// A symbolic link in the version's directory is not followed.
	info, err := files.Open(".info")
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("not the store's"), 0o644)
	if err := os.Symlink(secret, strings.TrimSuffix(info.Name(), ".info")+store.DocSPDX); err != nil {
		t.Fatal(err)
	}
	info.Close()
	if f, err := files.Open(store.DocSPDX); err == nil {
		data, _ := io.ReadAll(f)
		f.Close()
		t.Errorf("Files.Open followed a symbolic link and read %q", data)
	}
	if data, err := files.ReadFile(store.DocSPDX, 1<<20, nil); err == nil {
		t.Errorf("Files.ReadFile followed a symbolic link and read %q", data)
	}
	for _, suffix := range []string{"", "/../../x", ".lock", "list"} {
		if _, err := files.Open(suffix); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Files.Open(%q) = %v, want ErrInvalid", suffix, err)
		}
	}
	for _, m := range []module.Version{{Path: "example.com/hello", Version: "v1.9.9"}, {Path: "example.com/other", Version: "v1.0.0"}} {
		if _, err := d.OpenVersion(ctx, m); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("OpenVersion(%v) of unpublished version: %v, want fs.ErrNotExist", m, err)
		}
	}
	if _, err := d.OpenVersion(ctx, module.Version{Path: "example.com/hello", Version: "v1.0"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("OpenVersion of non-canonical version: %v, want ErrInvalid", err)
	}
}

// TestSuffixesUnambiguous: if one suffix ended with another, the file of
// one version could be the file of another version ("v1.0.0-x" + ".a.b" and
// "v1.0.0-x.a" + ".b").
func TestSuffixesUnambiguous(t *testing.T) {
	all := store.AllSuffixes()
	for _, a := range all {
		if !strings.HasPrefix(a, ".") || strings.ContainsAny(a, `/\`) {
			t.Errorf("suffix %q", a)
		}
		for _, b := range all {
			if a != b && strings.HasSuffix(a, b) {
				t.Errorf("suffix %q ends with suffix %q", a, b)
			}
		}
	}
	for _, s := range store.DocSuffixes {
		if !store.IsDoc(s) {
			t.Errorf("IsDoc(%q) = false", s)
		}
	}
}

func TestVersionsSorted(t *testing.T) {
	d := openStore(t)
	for _, v := range []string{"v1.10.0", "v1.2.0", "v1.2.0-rc.1", "v0.1.0", "v2.0.0+incompatible", "v1.2.0-beta"} {
		publish(t, d, newVersion(t, module.Version{Path: "example.com/hello", Version: v}))
	}
	want := []string{"v0.1.0", "v1.2.0-beta", "v1.2.0-rc.1", "v1.2.0", "v1.10.0", "v2.0.0+incompatible"}
	got, err := d.Versions(context.Background(), "example.com/hello")
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Versions = %v, %v; want %v", got, err, want)
	}
	list := mustRead(t, filepath.Join(d.Root(), "example.com/hello/@v/list"))
	if string(list) != strings.Join(want, "\n")+"\n" {
		t.Errorf("list file = %q", list)
	}
}

func TestParseListTolerant(t *testing.T) {
	list := "v1.0.0\r\n\n  v1.1.0 2024-01-01T00:00:00Z\nv1.0.0\ngarbage\nv1.2\nv2.0.0\nv1.3.0+meta\n../../etc\nv0.9.0"
	got := store.ParseList([]byte(list), "example.com/hello")
	want := []string{"v0.9.0", "v1.0.0", "v1.1.0"}
	if !slices.Equal(got, want) {
		t.Errorf("parseList = %q, want %q", got, want)
	}
}

func TestListBounded(t *testing.T) {
	d := openStore(t)
	publish(t, d, newVersion(t, hello))
	list := filepath.Join(d.Root(), "example.com/hello/@v/list")
	if err := os.WriteFile(list, bytes.Repeat([]byte("v1.0.0\n"), store.MaxList/7+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Versions(context.Background(), hello.Path); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("Versions of an oversized list = %v, want ErrCorrupt", err)
	}
}

func TestWalk(t *testing.T) {
	d := openStore(t)
	ms := []module.Version{
		{Path: "example.com/a", Version: "v1.0.0"},
		{Path: "example.com/a", Version: "v1.10.0"},
		{Path: "example.com/a", Version: "v1.9.0"},
		{Path: "example.com/a/b", Version: "v0.1.0"},
		{Path: "example.com/Azure/x", Version: "v1.0.0-RC1"},
	}
	for _, m := range ms {
		publish(t, d, newVersion(t, m))
	}
	// Not published: files without .info, and stray names.
	os.WriteFile(filepath.Join(d.Root(), "example.com/a/@v/v2.0.0.mod"), []byte("module example.com/a\n"), 0o644)
	os.MkdirAll(filepath.Join(d.Root(), ".hidden/@v"), 0o755)
	os.WriteFile(filepath.Join(d.Root(), ".hidden/@v/v1.0.0.info"), []byte("{}"), 0o644)
	os.MkdirAll(filepath.Join(d.Root(), "NotEscaped.com/@v"), 0o755)
	os.WriteFile(filepath.Join(d.Root(), "NotEscaped.com/@v/v1.0.0.info"), []byte("{}"), 0o644)
	// Published but missing from the list (a crash before the list): still walked.
	os.WriteFile(filepath.Join(d.Root(), "example.com/a/b/@v/list"), nil, 0o644)

	var got []module.Version
	if err := d.Walk(context.Background(), func(m module.Version) error { got = append(got, m); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []module.Version{ms[4], ms[0], ms[2], ms[1], ms[3]} // "!azure" sorts before "a"
	if !slices.Equal(got, want) {
		t.Errorf("Walk = %v\nwant   %v", got, want)
	}

	stop := errors.New("stop")
	n := 0
	err := d.Walk(context.Background(), func(module.Version) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("Walk with failing fn = %v after %d calls, want stop after 1", err, n)
	}
}

func TestOpenRoot(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := store.Open(file); err == nil {
		t.Error("Open of a regular file succeeded")
	}
	if _, err := store.Open(""); err == nil {
		t.Error("Open(\"\") succeeded")
	}
	root := filepath.Join(t.TempDir(), "a", "b")
	d, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if d.Root() != root {
		t.Errorf("Root() = %q, want %q", d.Root(), root)
	}
}

// TestLookupCorrupt: a published version that lost a file is ErrCorrupt,
// not "not published", so nobody republishes over it.
func TestLookupCorrupt(t *testing.T) {
	d := openStore(t)
	v := newVersion(t, hello)
	publish(t, d, v)
	if err := os.Remove(filepath.Join(d.Root(), "example.com/hello/@v/v1.0.0.mod")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Lookup(context.Background(), hello); !errors.Is(err, store.ErrCorrupt) || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lookup of a damaged version = %v, want ErrCorrupt", err)
	}
	if _, err := d.OpenFile(context.Background(), hello, ".mod"); !errors.Is(err, store.ErrCorrupt) || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenFile of a lost .mod = %v, want ErrCorrupt", err)
	}
	if created, err := d.Publish(context.Background(), v); created || !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("Publish over a damaged version = %v, %v; want false, ErrCorrupt", created, err)
	}
}
