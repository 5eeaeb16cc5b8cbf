package policies

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// compileFiles parses and compiles policy files given as name → YAML.
func compileFiles(t testing.TB, cfg Config, files map[string]string) *Set {
	t.Helper()
	var parsed []*File
	for name, src := range files {
		f, err := Parse(name, []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
	}
	s, err := cfg.Compile(parsed)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testNow = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func testInput(path string, deps int) *Input {
	in := &Input{Module: NewModule(path, "v1.0.0", testNow.Add(-time.Hour))}
	for i := range deps {
		in.Dependencies = append(in.Dependencies, Dependency{
			Path: fmt.Sprintf("example.com/dep%d", i), Version: "v1.0.0", Public: true,
			Licenses: []string{"MIT"}, Time: testNow.Add(-30 * 24 * time.Hour),
		})
	}
	return in
}

// outcomes renders a decision's results as "file/rule=result" in order.
func outcomes(d *Decision) string {
	var s []string
	for _, r := range d.Results {
		s = append(s, fmt.Sprintf("%s/%s=%s", r.File, r.Rule, r.Result))
	}
	return strings.Join(s, " ")
}

func TestEvaluate(t *testing.T) {
	set := compileFiles(t, Config{}, map[string]string{
		"a.yaml": `
modules: [corp.example/a]
rules:
  - name: deny-rule
    expr: input.module.version != "v9.9.9"
    message: "{{input.module.path}}@{{input.module.version}} is withdrawn"
  - name: warn-rule
    action: warn
    expr: input.dependencies.size() < 3
    message: "{{input.dependencies.size()}} dependencies"
  - name: no-message
    expr: input.module.path != "corp.example/a/nomsg"
`,
		"b.yaml": `
modules: [corp.example]
rules:
  - name: index
    expr: input.dependencies[0].path != "example.com/bad"
    message: "first dependency is bad"
  - name: warn-errors
    action: warn
    expr: input.dependencies[1].public
    message: "second dependency is private"
  - name: bad-message
    expr: input.module.path != "corp.example/a/badmsg"
    message: "{{input.dependencies[5].path}} is bad"
`,
	})
	for _, tt := range []struct {
		name     string
		in       *Input
		allowed  bool
		outcomes string
		message  string // substring of the messages
	}{
		{
			name:     "no policy covers the path: deny by default",
			in:       testInput("example.com/x", 2),
			outcomes: "/no-policy=deny",
			message:  "no policy covers example.com/x",
		},
		{
			name:     "a pattern covers its path prefix by element only",
			in:       testInput("corp.example.org/x", 2),
			outcomes: "/no-policy=deny",
		},
		{
			name:     "every rule of every covering file, in file order",
			in:       testInput("corp.example/a/x", 2),
			allowed:  true,
			outcomes: "a.yaml/deny-rule=pass a.yaml/warn-rule=pass a.yaml/no-message=pass b.yaml/index=pass b.yaml/warn-errors=pass b.yaml/bad-message=pass",
		},
		{
			name:     "only the covering files",
			in:       testInput("corp.example/other", 2),
			allowed:  true,
			outcomes: "b.yaml/index=pass b.yaml/warn-errors=pass b.yaml/bad-message=pass",
		},
		{
			name: "deny with rendered message",
			in: func() *Input {
				in := testInput("corp.example/a/x", 2)
				in.Module.Version = "v9.9.9"
				return in
			}(),
			outcomes: "a.yaml/deny-rule=deny a.yaml/warn-rule=pass a.yaml/no-message=pass b.yaml/index=pass b.yaml/warn-errors=pass b.yaml/bad-message=pass",
			message:  "corp.example/a/x@v9.9.9 is withdrawn",
		},
		{
			name:     "warn admits",
			in:       testInput("corp.example/a/x", 4),
			allowed:  true,
			outcomes: "a.yaml/deny-rule=pass a.yaml/warn-rule=warn a.yaml/no-message=pass b.yaml/index=pass b.yaml/warn-errors=pass b.yaml/bad-message=pass",
			message:  "4 dependencies",
		},
		{
			name:     "a rule without a message says what failed",
			in:       testInput("corp.example/a/nomsg", 2),
			outcomes: "a.yaml/deny-rule=pass a.yaml/warn-rule=pass a.yaml/no-message=deny b.yaml/index=pass b.yaml/warn-errors=pass b.yaml/bad-message=pass",
			message:  `not satisfied: input.module.path != "corp.example/a/nomsg"`,
		},
		{
			name:     "runtime error denies, never allows",
			in:       testInput("corp.example/x", 0),
			outcomes: "b.yaml/index=error b.yaml/warn-errors=error b.yaml/bad-message=pass",
			message:  "index out of bounds: 0",
		},
		{
			name:     "a warn rule that errors denies too",
			in:       testInput("corp.example/x", 1),
			outcomes: "b.yaml/index=pass b.yaml/warn-errors=error b.yaml/bad-message=pass",
		},
		{
			name:     "a message that fails to render does not change the result",
			in:       testInput("corp.example/a/badmsg", 2),
			outcomes: "a.yaml/deny-rule=pass a.yaml/warn-rule=pass a.yaml/no-message=pass b.yaml/index=pass b.yaml/warn-errors=pass b.yaml/bad-message=deny",
			message:  "<error: index out of bounds: 5> is bad",
		},
		{
			name:     "input over the limits",
			in:       testInput("corp.example/x", 10001),
			outcomes: "/input-limits=deny",
			message:  "dependencies has 10001 entries, over the limit of 10000",
		},
		{
			name: "a string over the limits",
			in: func() *Input {
				in := testInput("corp.example/x", 2)
				in.Dependencies[1].Licenses = []string{strings.Repeat("x", 5000)}
				return in
			}(),
			outcomes: "/input-limits=deny",
			message:  "dependencies[].licenses[] is 5000 bytes",
		},
		{
			name:     "nil input",
			outcomes: "/input-limits=deny",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := set.Evaluate(context.Background(), tt.in, testNow)
			if d.Allowed != tt.allowed {
				t.Errorf("Allowed = %v, want %v; %s", d.Allowed, tt.allowed, outcomes(d))
			}
			if got := outcomes(d); got != tt.outcomes {
				t.Errorf("outcomes:\n got %s\nwant %s", got, tt.outcomes)
			}
			var msgs []string
			for _, r := range d.Results {
				msgs = append(msgs, r.Message)
				if r.Result == Pass && r.Message != "" {
					t.Errorf("%s passed with message %q", r.Rule, r.Message)
				}
				if r.Result != Pass && r.Message == "" {
					t.Errorf("%s: %s without message", r.Rule, r.Result)
				}
			}
			if !strings.Contains(strings.Join(msgs, "\n"), tt.message) {
				t.Errorf("messages %q do not contain %q", msgs, tt.message)
			}
			if d.Digest != set.Digest() || !strings.HasPrefix(d.Digest, "sha256:") {
				t.Errorf("Digest = %q, want the set's %q", d.Digest, set.Digest())
			}
		})
	}
}

func TestEvaluateNoSet(t *testing.T) {
	var s *Set
	d := s.Evaluate(context.Background(), testInput("corp.example/x", 0), testNow)
	if d.Allowed || len(d.Results) != 1 || d.Results[0].Rule != ruleNoSet {
		t.Errorf("nil set: %+v", d)
	}
}

// TestCostLimit: an expression that would run long is stopped by the
// runtime cost limit and denies; and with the default configuration the
// same expression is refused at compile time (testdata/check/cost.txtar).
func TestCostLimit(t *testing.T) {
	cfg := Config{CostLimit: 100_000, MaxEstimatedCost: 1 << 62}
	set := compileFiles(t, cfg, map[string]string{"p.yaml": `
modules: [corp.example]
rules:
  - name: quadratic
    expr: input.dependencies.all(d, input.dependencies.all(e, d.path != e.path || d.version == e.version))
  - name: cheap
    expr: input.module.path != ""
`})
	d := set.Evaluate(context.Background(), testInput("corp.example/x", 5), testNow)
	if !d.Allowed {
		t.Fatalf("small input denied: %v", d.Reasons())
	}
	start := time.Now()
	d = set.Evaluate(context.Background(), testInput("corp.example/x", 3000), testNow)
	elapsed := time.Since(start)
	if d.Allowed || d.Results[0].Result != Errored || !strings.Contains(d.Results[0].Message, "cost limit exceeded") {
		t.Errorf("quadratic rule on 3000 dependencies: %s %v", outcomes(d), d.Reasons())
	}
	if d.Results[1].Result != Pass {
		t.Errorf("the next rule was not evaluated: %s", outcomes(d))
	}
	if elapsed > 2*time.Second {
		t.Errorf("stopping at the cost limit took %v", elapsed)
	}
}

func TestEvaluateCanceled(t *testing.T) {
	set := compileFiles(t, Config{}, map[string]string{"p.yaml": `
modules: [corp.example]
rules:
  - name: loop
    expr: input.dependencies.all(d, d.licenses.all(l, licenses.allowed(l, ["MIT"])))
`})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := set.Evaluate(ctx, testInput("corp.example/x", 100), testNow)
	if d.Allowed || d.Results[0].Result != Errored || !strings.Contains(d.Results[0].Message, "canceled") {
		t.Errorf("canceled: %s %v", outcomes(d), d.Reasons())
	}
}

// TestHugeInput: the largest input within the limits, against every example
// policy, is decided in bounded time.
func TestHugeInput(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	set, err := Load("examples")
	if err != nil {
		t.Fatal(err)
	}
	in := testInput("corp.example/platform/x", 10000)
	in.Licenses = []string{"MIT"}
	in.Repository = "https://git.corp.example/platform/x"
	in.Tag.SignerGroup = "release-team"
	in.GoMod.Go = "1.22"
	start := time.Now()
	d := set.Evaluate(context.Background(), in, testNow)
	t.Logf("10000 dependencies: %v, %s", time.Since(start), outcomes(d))
	if !d.Allowed {
		t.Errorf("denied: %v", d.Reasons())
	}
}

func TestEvaluateConcurrent(t *testing.T) {
	set, err := Load("examples")
	if err != nil {
		t.Fatal(err)
	}
	in := benchInput()
	want := outcomes(set.Evaluate(context.Background(), in, testNow))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if got := outcomes(set.Evaluate(context.Background(), in, testNow)); got != want {
					t.Errorf("concurrent evaluation: %s, want %s", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestDigest: the digest is what sha256sum of the files, piped into
// sha256sum, prints; and it changes with any byte or name.
func TestDigest(t *testing.T) {
	files := map[string]string{
		"b.yaml": "modules: [corp.example]\nrules:\n  - name: r\n    expr: \"true\"\n",
		"a.yml":  "modules: [other.example]\nrules:\n  - name: r\n    expr: \"true\"\n",
	}
	set := compileFiles(t, Config{}, files)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var sums strings.Builder
	for _, n := range names {
		fmt.Fprintf(&sums, "%x  %s\n", sha256.Sum256([]byte(files[n])), n)
	}
	if want := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(sums.String()))); set.Digest() != want {
		t.Errorf("Digest = %s, want %s", set.Digest(), want)
	}
	files["b.yaml"] += "# a comment\n"
	if d := compileFiles(t, Config{}, files).Digest(); d == set.Digest() {
		t.Errorf("digest did not change with the bytes")
	}
	files["c.yaml"] = files["b.yaml"]
	delete(files, "b.yaml")
	if d := compileFiles(t, Config{}, files).Digest(); d == set.Digest() {
		t.Errorf("digest did not change with the name")
	}
	if got := set.Files(); strings.Join(got, ",") != "a.yml,b.yaml" {
		t.Errorf("Files = %v", got)
	}
}

func TestChanges(t *testing.T) {
	before := &Decision{Allowed: true, Results: []RuleResult{
		{File: "a.yaml", Rule: "x", Result: Pass},
		{File: "a.yaml", Rule: "gone", Result: Pass},
	}}
	after := &Decision{Allowed: false, Results: []RuleResult{
		{File: "a.yaml", Rule: "x", Result: Denied, Message: "bad"},
		{File: "b.yaml", Rule: "new", Result: Warned, Message: "hm"},
	}}
	got := strings.Join(Changes(before, after), "\n")
	want := "decision: allowed -> denied\na.yaml/x: pass -> deny: bad\nb.yaml/new: new rule: warn: hm\na.yaml/gone: gone (was pass)"
	if got != want {
		t.Errorf("Changes:\n%s\nwant:\n%s", got, want)
	}
	if c := Changes(before, before); len(c) != 0 {
		t.Errorf("Changes of equal decisions: %v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if _, err := (Config{CostLimit: 10, MaxEstimatedCost: 5}).Compile(nil); err == nil {
		t.Errorf("max estimated cost below the cost limit: no error")
	}
}

// TestUsesTime: a set uses the time when a rule reads now or calls age,
// directly or inside a macro; a message that does is not a rule; the
// example policy that measures age does.
func TestUsesTime(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{`input.module.version != "v9.9.9"`, false},
		{`now > timestamp("2020-01-01T00:00:00Z")`, true},
		{`!known(input.module.time) || age(input.module.time) > duration("24h")`, true},
		{`input.dependencies.all(d, !known(d.time) || age(d.time) > duration("1h"))`, true},
		{`input.dependencies.all(d, known(d.time))`, false},
		{`timestamp("2030-01-01T00:00:00Z") > input.module.time`, false},
	} {
		set := compileFiles(t, Config{}, map[string]string{"a.yaml": fmt.Sprintf(`
modules: [corp.example]
rules:
  - name: r
    expr: >-
      %s
    message: "checked at {{now}}"
`, tc.expr)})
		if got := set.UsesTime(); got != tc.want {
			t.Errorf("%s: UsesTime %v, want %v", tc.expr, got, tc.want)
		}
	}
	ex, err := Load("examples")
	if err != nil {
		t.Fatal(err)
	}
	if !ex.UsesTime() {
		t.Error("the examples (min-age.yaml) use the time, UsesTime says not")
	}
	var none *Set
	if none.UsesTime() {
		t.Error("a nil set uses the time")
	}
}
