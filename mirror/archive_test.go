package mirror

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/modgate/modgate/internal/testrepo"
)

// TestModuleFilesAgree: the module zip made from ModuleFiles hashes exactly
// as the one zip.CreateFromVCS makes from the same commit, for a root
// module and modules in subdirectories (with and without their own
// LICENSE), through .gitattributes export-ignore, export-subst and eol
// rules, a symlink, a nested module and a vendor directory.
func TestModuleFilesAgree(t *testing.T) {
	dir, r := newRepo(t)
	r.Module("sub", "corp.example/m/sub")
	r.Module("lic", "corp.example/m/lic")
	r.Module("nested", "corp.example/m/nested")
	r.Write(map[string]string{
		"LICENSE":         testrepo.MITLicense,
		"a.go":            "package m\n",
		".gitattributes":  "secret.txt export-ignore\ncrlf.txt text eol=crlf\nsubst.txt export-subst\n",
		"secret.txt":      "not in the archive\n",
		"crlf.txt":        "one\ntwo\n",
		"subst.txt":       "$Format:%H$\n",
		"vendor/x/x.go":   "package x\n",
		"nested/n.go":     "package nested\n",
		"sub/s.go":        "package sub\n",
		"lic/LICENSE":     "own license\n",
		"lic/l.go":        "package lic\n",
		"sub/deep/d.go":   "package deep\n",
		"sub/.gitignore":  "ignored\n",
		"sub/testdata/in": "data\n",
	})
	if err := os.Symlink("a.go", filepath.Join(r.Dir, "link.go")); err != nil {
		t.Fatal(err)
	}
	commit := r.Commit("all")
	r.TagSSH("v1.0.0")
	ctx := context.Background()
	m := fetched(t, filepath.Join(dir, "mirrors"), r.Dir, "v1.0.0")
	for _, tc := range []struct{ subdir, path string }{
		{"", "corp.example/m"}, {"sub", "corp.example/m/sub"}, {"lic", "corp.example/m/lic"}, {"nested", "corp.example/m/nested"},
	} {
		mv := module.Version{Path: tc.path, Version: "v1.0.0"}
		var want, got bytes.Buffer
		if err := modzip.CreateFromVCS(&want, mv, m.Dir(), commit, tc.subdir); err != nil {
			t.Fatalf("%s: CreateFromVCS: %v", tc.path, err)
		}
		files, err := m.ModuleFiles(ctx, commit, tc.subdir, 1<<20)
		if err != nil {
			t.Fatalf("%s: ModuleFiles: %v", tc.path, err)
		}
		if err := modzip.Create(&got, mv, files); err != nil {
			t.Fatalf("%s: Create: %v", tc.path, err)
		}
		hw, hg := zipHash(t, want.Bytes()), zipHash(t, got.Bytes())
		if hw != hg {
			t.Errorf("%s: ModuleFiles zip %s, CreateFromVCS zip %s", tc.path, hg, hw)
		}
	}
	if _, err := m.ModuleFiles(ctx, commit, "", 1000); !errors.Is(err, ErrTooLarge) {
		t.Errorf("archive over the limit: %v, want ErrTooLarge", err)
	}
	if _, err := m.ModuleFiles(ctx, "HEAD", "", 1<<20); !errors.Is(err, ErrBadName) {
		t.Errorf("commit not an object id: %v, want ErrBadName", err)
	}
}

func zipHash(t *testing.T, data []byte) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "m.zip")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := dirhash.HashZip(name, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestLimitedBuffer: the bound holds however the writer is fed; exec copies
// with io.Copy, which would use a ReadFrom if the buffer had one.
func TestLimitedBuffer(t *testing.T) {
	var b limitedBuffer
	b.limit = 10
	n, err := io.Copy(&b, bytes.NewReader(make([]byte, 100)))
	if !b.over || len(b.Bytes()) != 10 || err == nil {
		t.Errorf("io.Copy of 100 bytes into a 10-byte limitedBuffer: kept %d, over %v, copied %d, %v", len(b.Bytes()), b.over, n, err)
	}
}

// TestFetchTagShallow: a fetch brings the tag, its commit and that commit's
// tree, not the history: a file deleted before the tag is not in the mirror.
// A moved tag is still seen, and the zip of each commit is complete.
func TestFetchTagShallow(t *testing.T) {
	dir, r := newRepo(t)
	r.Write(map[string]string{"old.txt": "only in history\n"})
	r.Commit("one")
	oldBlob := strings.TrimSpace(r.Git("rev-parse", "HEAD:old.txt"))
	r.Git("rm", "-q", "old.txt")
	first := r.Commit("two")
	r.TagSSH("v1.0.0")
	ctx := context.Background()
	m := fetched(t, filepath.Join(dir, "mirrors"), r.Dir, "v1.0.0")
	git := func(args ...string) (string, error) {
		out, err := exec.Command("git", append([]string{"-C", m.Dir()}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if n, err := git("rev-list", "--count", "refs/tags/v1.0.0"); err != nil || n != "1" {
		t.Errorf("commits in the mirror: %s, %v; want 1", n, err)
	}
	if _, err := git("cat-file", "-e", oldBlob); err == nil {
		t.Error("a blob only in history was fetched")
	}
	paths := func(commit string) string {
		t.Helper()
		files, err := m.ModuleFiles(ctx, commit, "", 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		var ps []string
		for _, f := range files {
			ps = append(ps, f.Path())
		}
		sort.Strings(ps)
		return strings.Join(ps, " ")
	}
	want := strings.TrimSpace(strings.ReplaceAll(r.Git("ls-tree", "-r", "--name-only", first), "\n", " "))
	if got := paths(first); got != want || strings.Contains(got, "old.txt") {
		t.Errorf("files at the tag: %s, want %s", got, want)
	}

	r.Write(map[string]string{"new.go": "package m\n"})
	moved := r.Commit("three")
	r.Git("tag", "-d", "v1.0.0")
	r.TagSSH("v1.0.0")
	if err := m.FetchTag(ctx, "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	tag, err := m.ReadTag(ctx, "v1.0.0")
	if err != nil || !strings.Contains(string(tag.Raw), "object "+moved) {
		t.Fatalf("moved tag: %+v, %v", tag, err)
	}
	want = strings.TrimSpace(strings.ReplaceAll(r.Git("ls-tree", "-r", "--name-only", moved), "\n", " "))
	if got := paths(moved); got != want || !strings.Contains(got, "new.go") {
		t.Errorf("files at the moved tag: %s, want %s", got, want)
	}
}

// TestFetchTagDumbHTTP: a server that cannot send a shallow pack (git's
// "dumb" HTTP: static files) gets the plain fetch.
func TestFetchTagDumbHTTP(t *testing.T) {
	dir, r := newRepo(t)
	r.Commit("one")
	r.TagSSH("v1.0.0")
	bare := filepath.Join(dir, "www", "m.git")
	if out, err := exec.Command("git", "clone", "-q", "--bare", r.Dir, bare).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := exec.Command("git", "-C", bare, "update-server-info").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(dir, "www"))))
	defer srv.Close()
	ctx := context.Background()
	m, err := Open(ctx, Git{}, filepath.Join(dir, "mirrors"), srv.URL+"/m.git", "http")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.FetchTag(ctx, "v1.0.0"); err != nil {
		t.Fatalf("fetch over dumb HTTP: %v", err)
	}
	if tag, err := m.ReadTag(ctx, "v1.0.0"); err != nil || tag.Type != "tag" {
		t.Fatalf("ReadTag: %+v, %v", tag, err)
	}
	if err := m.FetchTag(ctx, "v9.9.9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tag over dumb HTTP: %v, want ErrNotFound", err)
	}
}
