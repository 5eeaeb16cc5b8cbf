package mirror

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/testrepo"
)

func TestCheckTagName(t *testing.T) {
	for _, tc := range []struct {
		tag string
		ok  bool
	}{
		{"v1.2.3", true},
		{"sub/dir/v1.2.3", true},
		{"v1.2.3-rc.1+meta", true},
		{"", false},
		{"-v1", false},
		{"--upload-pack=touch /tmp/x", false},
		{"sub/-o/v1.0.0", false},
		{".hidden/v1.0.0", false},
		{"a..b", false},
		{"v1@{0}", false},
		{"v1.lock", false},
		{"v1/", false},
		{"a//b", false},
		{"v1 2", false},
		{"v1\n2", false},
		{"v1:2", false},
		{"v1*", false},
		{"v1^{}", false},
		{"v1~1", false},
		{strings.Repeat("a", 256), false},
	} {
		err := CheckTagName(tc.tag)
		if (err == nil) != tc.ok {
			t.Errorf("CheckTagName(%q) = %v, want ok=%v", tc.tag, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("CheckTagName(%q) error %v does not wrap ErrBadName", tc.tag, err)
		}
	}
}

func FuzzCheckTagName(f *testing.F) {
	for _, s := range []string{"v1.2.3", "a/b/v0.1.0", "-x", "a..b", "x@{y}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		if CheckTagName(tag) != nil {
			return
		}
		// Whatever passes can never be read by git as an option, a revision
		// expression or a pathspec magic, in any position we place it.
		for _, elem := range strings.Split(tag, "/") {
			if elem == "" || elem[0] == '-' || elem[0] == '.' {
				t.Fatalf("%q passed with element %q", tag, elem)
			}
		}
		if strings.ContainsAny(tag, " :^~?*[\\\x00\n") {
			t.Fatalf("%q passed with a git metacharacter", tag)
		}
	})
}

// A real fetch from a real repository: the tag arrives; a tag moved upstream
// is seen (not hidden by the old local copy); a missing tag is ErrNotFound.
func TestFetchTag(t *testing.T) {
	dir, r := newRepo(t)
	r.Commit("one")
	r.TagSSH("v1.0.0")
	ctx := context.Background()
	m := fetched(t, filepath.Join(dir, "mirrors"), r.Dir, "v1.0.0")
	first, err := m.ReadTag(ctx, "v1.0.0")
	if err != nil || first.Type != "tag" || !strings.HasPrefix(string(first.Raw), "object ") {
		t.Fatalf("ReadTag: %+v, %v", first, err)
	}

	r.Write(map[string]string{"moved.go": "package m\n"})
	r.Commit("two")
	r.Git("tag", "-d", "v1.0.0")
	r.TagSSH("v1.0.0")
	if err := m.FetchTag(ctx, "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	second, err := m.ReadTag(ctx, "v1.0.0")
	if err != nil || second.ID == first.ID {
		t.Fatalf("moved tag not seen: %s then %s, %v", first.ID, second.ID, err)
	}

	if err := m.FetchTag(ctx, "v9.9.9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tag: %v", err)
	}
	if err := m.FetchTag(ctx, "--upload-pack=x"); !errors.Is(err, ErrBadName) {
		t.Errorf("option-like tag: %v", err)
	}

	// The ext transport is disabled even if the remote were to name it.
	ext, err := Open(ctx, Git{}, filepath.Join(dir, "mirrors"), "ext::sh -c 'touch "+filepath.Join(dir, "pwned")+"'", "file")
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.FetchTag(ctx, "v1.0.0"); err == nil {
		t.Fatal("fetch over ext:: succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Fatal("ext:: transport ran a command")
	}
}

// TestReadFile: one `git cat-file --batch` per read; a missing file or a
// directory is ErrNotFound; a file over the limit is refused before it is
// read; the mirror's configuration checks every fetched object.
func TestReadFile(t *testing.T) {
	dir, r := newRepo(t)
	r.Write(map[string]string{"sub/big.txt": strings.Repeat("x", 5000)})
	commit := r.Commit("one")
	r.TagGPG("v1.0.0")
	ctx := context.Background()
	m := fetched(t, filepath.Join(dir, "mirrors"), r.Dir, "v1.0.0")
	cfg, err := os.ReadFile(filepath.Join(m.Dir(), ".git", "config"))
	if err != nil || !strings.Contains(string(cfg), "fsckObjects = true") {
		t.Fatalf("mirror config: %s, %v", cfg, err)
	}
	out, err := exec.Command("git", "-C", m.Dir(), "config", "--get", "transfer.fsckObjects").Output()
	if err != nil || strings.TrimSpace(string(out)) != "true" {
		t.Fatalf("git reads transfer.fsckObjects = %q, %v", out, err)
	}
	data, err := m.ReadFile(ctx, commit, "go.mod", 1<<20)
	if err != nil || !strings.HasPrefix(string(data), "module corp.example/m") {
		t.Fatalf("go.mod: %q, %v", data, err)
	}
	if data, err := m.ReadFile(ctx, commit, "sub/big.txt", 5000); err != nil || len(data) != 5000 {
		t.Errorf("file at the limit: %d bytes, %v", len(data), err)
	}
	if _, err := m.ReadFile(ctx, commit, "sub/big.txt", 4999); err == nil || !strings.Contains(err.Error(), "5000 bytes, over the 4999-byte limit") {
		t.Errorf("file over the limit: %v", err)
	}
	for _, name := range []string{"nope.go", "sub"} {
		if _, err := m.ReadFile(ctx, commit, name, 1<<20); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
	if _, err := m.ReadFile(ctx, commit, "go.mod\nrefs/tags/v1.0.0", 1<<20); !errors.Is(err, ErrBadName) {
		t.Errorf("name with a newline: %v", err)
	}
	if _, err := m.ReadTag(ctx, "v9.9.9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tag: %v", err)
	}
}

// fetched opens the mirror of repo under root and fetches tag into it.
func fetched(t *testing.T, root, repo, tag string) *Mirror {
	t.Helper()
	ctx := context.Background()
	m, err := Open(ctx, Git{}, root, repo, "file")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.FetchTag(ctx, tag); err != nil {
		t.Fatal(err)
	}
	return m
}

// newRepo makes a git repository with a module corp.example/m at its root,
// and signing keys, under a new temporary directory (returned).
func newRepo(t *testing.T) (string, *testrepo.Repo) {
	t.Helper()
	testrepo.Require(t)
	dir := t.TempDir()
	k := testrepo.NewKeys(t, filepath.Join(dir, "keys"))
	r := testrepo.NewRepo(t, k, filepath.Join(dir, "repo"))
	r.Module("", "corp.example/m")
	return dir, r
}
