package policies

import (
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
)

// evalCEL evaluates one expression as a rule would see it.
func evalCEL(t *testing.T, expr string, in *Input, now time.Time) (any, error) {
	t.Helper()
	env, err := newEnv(Config{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		t.Fatalf("%s: %v", expr, iss.Err())
	}
	prg, err := env.Program(ast)
	if err != nil {
		t.Fatal(err)
	}
	act, err := cel.FunctionVars(map[string]any{"input": in, "now": now}, lateBound(now))
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := prg.Eval(act)
	if err != nil {
		return nil, err
	}
	return v.Value(), nil
}

func TestHelpers(t *testing.T) {
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	in := &Input{
		Module: NewModule("corp.example/hello", "v1.2.0", now.Add(-90*time.Minute)),
		// Dependencies[0].Time is unknown.
		Dependencies: []Dependency{{Path: "example.com/a", Version: "v1.0.0"}},
	}
	for _, tt := range []struct {
		expr    string
		want    any
		wantErr string // substring of the error; "" for none
	}{
		// semver.compare: -1, 0, 1 as golang.org/x/mod/semver orders versions.
		{expr: `semver.compare("v1.2.0", "v1.10.0")`, want: int64(-1)},
		{expr: `semver.compare("v1.2.0", "v1.2.0")`, want: int64(0)},
		{expr: `semver.compare("v2.0.0", "v1.9.9")`, want: int64(1)},
		{expr: `semver.compare("v1.0.0-rc.1", "v1.0.0")`, want: int64(-1)},
		{expr: `semver.compare("v1.0.0+incompatible", "v1.0.0")`, want: int64(0)},
		{expr: `semver.compare(input.module.version, "v1.2.0") == 0`, want: true},
		{expr: `semver.compare("1.2.0", "v1.2.0")`, wantErr: `"1.2.0" is not a semantic version`},
		{expr: `semver.compare("v1.2.0", "")`, wantErr: `"" is not a semantic version`},
		// semver.isValid never errors.
		{expr: `semver.isValid("v1.2.3")`, want: true},
		{expr: `semver.isValid("v1.2.3-pre.1+meta")`, want: true},
		{expr: `semver.isValid("1.2.3")`, want: false},
		{expr: `semver.isValid("")`, want: false},
		// semver.isPrerelease: pseudo-versions are prereleases.
		{expr: `semver.isPrerelease("v1.0.0-rc.1")`, want: true},
		{expr: `semver.isPrerelease("v1.0.0")`, want: false},
		{expr: `semver.isPrerelease("v0.0.0-20240101000000-abcdefabcdef")`, want: true},
		{expr: `semver.isPrerelease("latest")`, wantErr: "not a semantic version"},
		// goversion.compare: go directive versions, with or without "go".
		{expr: `goversion.compare("1.21", "1.22")`, want: int64(-1)},
		{expr: `goversion.compare("1.22.0", "1.22")`, want: int64(1)},
		{expr: `goversion.compare("go1.22.3", "1.22.3")`, want: int64(0)},
		{expr: `goversion.compare("1.23rc1", "1.23.0")`, want: int64(-1)},
		{expr: `goversion.compare("1.9", "1.10")`, want: int64(-1)},
		{expr: `goversion.compare("1.x", "1.22")`, wantErr: `"1.x" is not a Go version`},
		{expr: `goversion.compare("", "1.22")`, wantErr: "not a Go version"},
		// module.matches: GOPRIVATE patterns, path prefixes by element.
		{expr: `module.matches("corp.example/a/b", ["corp.example"])`, want: true},
		{expr: `module.matches("corp.example", ["corp.example"])`, want: true},
		{expr: `module.matches("corp.example.org/a", ["corp.example"])`, want: false},
		{expr: `module.matches("git.corp.example/a", ["*.corp.example"])`, want: true},
		{expr: `module.matches("corp.example/a/internal/x", ["corp.example/*/internal"])`, want: true},
		{expr: `module.matches("corp.example/a", ["other.example", "corp.example/a"])`, want: true},
		{expr: `module.matches("corp.example/a", [])`, want: false},
		{expr: `module.matches("corp.example/a", ["corp.example,other.example"])`, wantErr: "comma"},
		{expr: `module.matches("corp.example/a", ["corp.example/["])`, wantErr: "malformed glob"},
		// licenses.allowed: an SPDX expression against an allow list.
		{expr: `licenses.allowed("MIT", ["MIT"])`, want: true},
		{expr: `licenses.allowed("MIT", ["Apache-2.0", "BSD-3-Clause"])`, want: false},
		{expr: `licenses.allowed("MIT OR GPL-3.0-only", ["MIT"])`, want: true},
		{expr: `licenses.allowed("MIT AND GPL-3.0-only", ["MIT"])`, want: false},
		{expr: `licenses.allowed("MIT AND Apache-2.0", ["Apache-2.0", "MIT"])`, want: true},
		{expr: `licenses.allowed("(MIT OR Apache-2.0) AND BSD-3-Clause", ["Apache-2.0", "BSD-3-Clause"])`, want: true},
		{expr: `licenses.allowed("(MIT OR Apache-2.0) AND GPL-2.0-only", ["Apache-2.0", "MIT"])`, want: false},
		{expr: `licenses.allowed("Apache-2.0 WITH LLVM-exception", ["Apache-2.0 WITH LLVM-exception"])`, want: true},
		{expr: `licenses.allowed("GPL-2.0-or-later", ["GPL-3.0-only"])`, want: true},
		{expr: `licenses.allowed("NOASSERTION", ["MIT"])`, wantErr: "unknown license"},
		{expr: `licenses.allowed("", ["MIT"])`, wantErr: "licenses.allowed"},
		{expr: `licenses.allowed("MIT", [])`, wantErr: "allow list is empty"},
		{expr: `licenses.allowed("MIT OR Apache-2.0", ["MIT OR Apache-2.0"])`, wantErr: "allowedList"},
		{expr: `licenses.allowed("` + manyTerms(17) + `", ["MIT"])`, wantErr: "17 terms, over the limit of 16"},
		{expr: `licenses.allowed("` + manyTerms(16) + `", ["MIT"])`, want: true},
		{expr: `licenses.allowed("` + strings.Repeat("M", 2000) + `", ["MIT"])`, wantErr: "over the limit"},
		// licenses.valid never errors.
		{expr: `licenses.valid("MIT")`, want: true},
		{expr: `licenses.valid("MIT OR Apache-2.0")`, want: true},
		{expr: `licenses.valid("NOASSERTION")`, want: false},
		{expr: `licenses.valid("MIT OR")`, want: false},
		{expr: `licenses.valid("` + manyTerms(17) + `")`, want: false},
		// age and known: measured from the evaluation's now.
		{expr: `age(input.module.time)`, want: 90 * time.Minute},
		{expr: `age(input.module.time) > duration("1h")`, want: true},
		{expr: `age(timestamp("2025-06-02T00:00:00Z")) < duration("0s")`, want: true},
		{expr: `age(input.dependencies[0].time)`, wantErr: "time unknown"},
		{expr: `known(input.dependencies[0].time)`, want: false},
		{expr: `known(input.tag.time)`, want: false},
		{expr: `known(input.module.time)`, want: true},
		{expr: `now == timestamp("2025-06-01T00:00:00Z")`, want: true},
	} {
		got, err := evalCEL(t, tt.expr, in, now)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: got %v, %v; want error containing %q", tt.expr, got, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.expr, err)
		case got != tt.want:
			t.Errorf("%s = %v (%T), want %v (%T)", tt.expr, got, got, tt.want, tt.want)
		}
	}
}

// manyTerms returns an SPDX expression of n terms, the kind whose
// expansion grows exponentially: (MIT OR X) AND (MIT OR Y) AND ….
func manyTerms(n int) string {
	ids := []string{"Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "0BSD", "Zlib", "Unlicense", "MPL-2.0"}
	var parts []string
	for i := 0; i+1 < n; i += 2 {
		parts = append(parts, "(MIT OR "+ids[(i/2)%len(ids)]+")")
	}
	if n%2 == 1 {
		parts = append(parts, "MIT")
	}
	return strings.Join(parts, " AND ")
}

// TestHelperCosts: the runtime cost of a rule counts what its helpers do,
// so that the cost limit bounds them too.
func TestHelperCosts(t *testing.T) {
	set := compileFiles(t, Config{}, map[string]string{"p.yaml": `
modules: [corp.example]
rules:
  - name: cheap
    expr: input.module.path == "corp.example/x"
  - name: license
    expr: licenses.allowed("MIT", ["MIT", "Apache-2.0"])
`})
	act, err := cel.FunctionVars(map[string]any{"input": &Input{}, "now": testNow}, lateBound(testNow))
	if err != nil {
		t.Fatal(err)
	}
	var costs []uint64
	for _, r := range set.files[0].rules {
		_, det, err := r.prg.Eval(act)
		if err != nil {
			t.Fatal(err)
		}
		costs = append(costs, *det.ActualCost())
	}
	if want := uint64(costLicense + 2*costAllowed); costs[1] < want || costs[1] < 10*costs[0] {
		t.Errorf("costs %v: licenses.allowed costs less than %d", costs, want)
	}
}
