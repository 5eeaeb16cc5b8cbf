package mirror

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
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
	testrepo.Require(t)
	dir := t.TempDir()
	k := testrepo.NewKeys(t, filepath.Join(dir, "keys"))
	r := testrepo.NewRepo(t, k, filepath.Join(dir, "repo"))
	r.Module("", "corp.example/m")
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
