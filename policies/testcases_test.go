package policies

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var testCasePolicies = map[string]string{
	"a.yaml": `
modules: [corp.example]
rules:
  - name: signed
    expr: input.tag.signer_group == "release-team"
    message: "signed by {{input.tag.signer_group}}"
  - name: fresh
    action: warn
    expr: age(input.module.time) < duration("24h")
`,
	"b.yaml": `
modules: [corp.example/b]
rules:
  - name: signed
    expr: input.tag.signer_type == "ssh"
`,
}

// TestRunTests: cases pass and fail as the decision says, and a failure
// says what differed.
func TestRunTests(t *testing.T) {
	set := compileFiles(t, Config{}, testCasePolicies)
	dir := writeFiles(t, map[string]string{
		"cases.yaml": `
now: 2025-06-01T00:00:00Z
input:
  module: {path: corp.example/a, version: v1.0.0, time: 2025-05-31T12:00:00Z}
  tag: {signer_group: release-team, signer_type: openpgp}
cases:
  - name: pass
    allowed: true
    results: {signed: pass, a.yaml/fresh: pass}
  - name: case now overrides the file's
    now: 2025-06-03T00:00:00Z
    allowed: true
    results: {fresh: warn}
  - name: wrong allowed
    input: {tag: {signer_group: contractors}}
    allowed: true
  - name: wrong result
    input: {tag: {signer_group: contractors}}
    allowed: false
    results: {signed: pass}
  - name: unknown rule
    allowed: true
    results: {sigend: pass}
  - name: ambiguous rule
    input: {module: {path: corp.example/b}}
    allowed: false
    results: {signed: deny}
  - name: rule of a file that does not apply
    allowed: true
    results: {b.yaml/signed: pass}
  - name: not an outcome
    allowed: true
    results: {signed: allowed}
  - name: recorded input with a patch
    input_file: recorded/x.json
    input: {module: {time: 2025-05-31T23:00:00Z}}
    allowed: true
    results: {fresh: pass}
`,
		"recorded/x.json": `{"module": {"path": "corp.example/x", "version": "v1.0.0", "time": "2020-01-01T00:00:00Z"},
  "tag": {"signer_group": "release-team"}}`,
		"notes.txt": "not a test file",
	})
	results, err := RunTests(set, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"pass":                               "",
		"case now overrides the file's":      "",
		"wrong allowed":                      "allowed: got false, want true (a.yaml: signed: signed by contractors)",
		"wrong result":                       "results[signed]: got deny, want pass: signed by contractors",
		"unknown rule":                       "results[sigend]: no such rule in the policies",
		"ambiguous rule":                     "results[signed]: rule signed is in several files; name it file/rule",
		"rule of a file that does not apply": "results[b.yaml/signed]: got not applied (its file does not cover the module), want pass",
		"not an outcome":                     `results[signed]: "allowed" is not an outcome (pass, deny, warn, error)`,
		"recorded input with a patch":        "",
	}
	if len(results) != len(want) {
		t.Errorf("%d results, want %d", len(results), len(want))
	}
	for _, r := range results {
		w, ok := want[r.Case]
		if !ok {
			t.Errorf("unexpected case %q", r.Case)
			continue
		}
		if got := strings.Join(r.Failures, "; "); got != w || r.Passed != (w == "") {
			t.Errorf("%s: passed %v, failures %q; want %q", r.Case, r.Passed, got, w)
		}
		if r.Decision == nil || r.File != filepath.Join(dir, "cases.yaml") {
			t.Errorf("%s: decision %v, file %s", r.Case, r.Decision, r.File)
		}
	}
}

// TestRunTestsErrors: a test file that cannot be read as intended is an
// error naming the file and, where it can, the line.
func TestRunTestsErrors(t *testing.T) {
	set := compileFiles(t, Config{}, testCasePolicies)
	for _, tt := range []struct {
		name, file, want string
	}{
		{"unknown field", "cases:\n  - name: a\n    allowed: true\n    expect: pass\n", "t.yaml:4: field expect not found in a test case"},
		{"unknown input field", "cases:\n  - name: a\n    allowed: true\n    input: {tag: {signer_grup: x}}\n", `cases[0] (a): input: json: unknown field "signer_grup"`},
		{"input of the wrong type", "cases:\n  - name: a\n    allowed: true\n    input: {dependencies: {path: x}}\n", "cases[0] (a): input: json: cannot unmarshal object"},
		{"missing allowed", "cases:\n  - name: a\n", "cases[0] (a): missing allowed"},
		{"missing name", "cases:\n  - allowed: true\n", "cases[0] (): missing name"},
		{"duplicate name", "cases:\n  - {name: a, allowed: true}\n  - {name: a, allowed: true}\n", "cases[1] (a): duplicate name"},
		{"missing input file", "cases:\n  - {name: a, allowed: true, input_file: nope.json}\n", "cases[0] (a): input_file: open"},
		{"no cases", "now: 2025-06-01T00:00:00Z\n", "t.yaml: no cases"},
		{"syntax", "cases: [\n", "t.yaml:1: did not find expected node content"},
		{"billion laughs", laughs(), "aliases expand to over"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"t.yaml": tt.file})
			_, err := RunTests(set, dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("RunTests: %v; want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := RunTests(set, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no test files") {
		t.Errorf("empty directory: %v", err)
	}
}

// laughs is a test file whose input is small as YAML and huge expanded.
func laughs() string {
	var b strings.Builder
	b.WriteString("input:\n  licenses:\n    - &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 8; i++ {
		fmt.Fprintf(&b, "    - &a%d [", i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("cases:\n  - name: a\n    allowed: true\n")
	return b.String()
}
