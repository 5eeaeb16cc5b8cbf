package policies

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/check/*.txtar")

// TestCheck loads each testdata/check/*.txtar archive as a policy directory
// (every file but "want") and compares the error with the archive's "want"
// file: every problem, named by file, line and column. An archive whose
// policies compile has an empty want.
func TestCheck(t *testing.T) {
	archives, err := filepath.Glob("testdata/check/*.txtar")
	if err != nil || len(archives) == 0 {
		t.Fatalf("no archives: %v", err)
	}
	for _, name := range archives {
		t.Run(strings.TrimSuffix(filepath.Base(name), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(name)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			wantIdx := -1
			for i, f := range ar.Files {
				if f.Name == "want" {
					wantIdx = i
					continue
				}
				if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := ""
			if _, err := Load(dir); err != nil {
				got = strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "") + "\n"
			}
			if *update {
				if wantIdx < 0 {
					ar.Files = append(ar.Files, txtar.File{Name: "want"})
					wantIdx = len(ar.Files) - 1
				}
				ar.Files[wantIdx].Data = []byte(got)
				if err := os.WriteFile(name, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if wantIdx < 0 {
				t.Fatalf("no want file in %s", name)
			}
			if want := string(ar.Files[wantIdx].Data); got != want {
				t.Errorf("Load errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestLoadErrors: Load's errors take apart into located *Errors, one per
// problem, across files; an empty or missing directory is an error, since
// it would deny everything.
func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a.yaml":  "modules: [corp.example]\nrules:\n  - name: a\n    expr: input.modul.path == ''\n",
		"b.yml":   "modules: [corp.example]\nrules:\n  - name: b\n    expr: input.module.path\n    colour: red\n",
		"c.txt":   "not a policy",
		".d.yaml": "editor backup: ignored",
		"e.yaml~": "ignored",
		"ok.yaml": "modules: [corp.example]\nrules:\n  - name: ok\n    expr: \"true\"\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Load(dir)
	errs := Errors(err)
	var got []string
	for _, e := range errs {
		got = append(got, fmt.Sprintf("%s:%d:%d:%s", filepath.Base(e.File), e.Line, e.Col, e.Rule))
	}
	// b.yml's unknown field stops it before its expression is compiled.
	if want := "a.yaml:4:16:a b.yml:5:5:"; strings.Join(got, " ") != want {
		t.Errorf("errors %q, want %q\n%v", got, want, err)
	}
	if !strings.HasPrefix(err.Error(), filepath.Join(dir, "a.yaml")+":4:16: ") {
		t.Errorf("error does not start with the file's path: %v", err)
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no policy files") {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("missing directory: no error")
	}
	if _, err := Compile(nil); err == nil {
		t.Errorf("Compile(nil): no error")
	}
}
