package policies

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchInput is a typical admission: 30 dependencies, a few of each kind.
func benchInput() *Input {
	in := &Input{
		Module:     NewModule("corp.example/platform/hello", "v1.2.0", testNow.Add(-48*time.Hour)),
		Repository: "https://git.corp.example/platform/hello",
		Tag: Tag{Name: "v1.2.0", Time: testNow.Add(-48 * time.Hour), SignerType: "openpgp",
			Fingerprint: "3AA5C34371567BD2C2A5A2D5F1C6B9E3A0C1D2E4", Principal: "Release Bot <release-bot@corp.example>",
			SignerGroup: "release-team"},
		GoMod:    GoMod{Go: "1.22", Toolchain: "go1.22.4"},
		Licenses: []string{"Apache-2.0"},
	}
	licenses := []string{"MIT", "Apache-2.0", "BSD-3-Clause", "MIT OR Apache-2.0"}
	for i := range 30 {
		d := Dependency{
			Path:     fmt.Sprintf("github.com/org%d/module%d", i%7, i),
			Version:  fmt.Sprintf("v1.%d.0", i),
			Direct:   i%3 == 0,
			Public:   i%5 != 0,
			Licenses: []string{licenses[i%len(licenses)]},
			Admitted: i%5 == 0,
			Time:     testNow.Add(-time.Duration(30+i) * 24 * time.Hour),
		}
		if !d.Public {
			d.Path = fmt.Sprintf("corp.example/lib%d", i)
		}
		in.Dependencies = append(in.Dependencies, d)
		in.GoMod.Requires = append(in.GoMod.Requires, Require{Path: d.Path, Version: d.Version, Indirect: !d.Direct})
	}
	return in
}

// fiftyRules is one policy file of 50 rules of the kinds the examples use.
func fiftyRules() string {
	exprs := []string{
		`input.tag.signer_group == "release-team"`,
		`input.tag.signer_type != "ssh" || input.tag.principal.endsWith("@corp.example")`,
		`input.repository.startsWith("https://git.corp.example/")`,
		`!module.matches(input.module.path, ["corp.example/platform"]) || input.repository.startsWith("https://git.corp.example/platform/")`,
		`input.licenses.size() > 0 && input.licenses.all(l, licenses.allowed(l, ["MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC"]))`,
		`input.dependencies.all(d, d.licenses.size() > 0 && d.licenses.all(l, licenses.allowed(l, ["MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC"])))`,
		`!input.gomod.replaces.exists(r, r.local)`,
		`!input.module.prerelease`,
		`input.dependencies.all(d, !d.direct || !semver.isPrerelease(d.version))`,
		`input.dependencies.all(d, !d.public || (known(d.time) && age(d.time) >= duration("168h")))`,
		`!input.dependencies.exists(d, d.path + "@" + d.version in ["github.com/example/compromised@v1.4.2", "golang.org/x/text@v0.3.5"])`,
		`input.gomod.go != "" && goversion.compare(input.gomod.go, "1.22") >= 0`,
		`input.gomod.toolchain == "" || goversion.compare(input.gomod.toolchain, "1.22") >= 0`,
		`semver.compare(input.module.version, "v1.0.0") >= 0`,
		`input.dependencies.all(d, d.public || d.admitted)`,
		`age(input.tag.time) < duration("720h")`,
		`!input.dependencies.exists(d, module.matches(d.path, ["github.com/example/abandoned", "github.com/evil-corp"]))`,
	}
	var b strings.Builder
	b.WriteString("modules: [corp.example]\nrules:\n")
	for i := range 50 {
		fmt.Fprintf(&b, "  - name: rule-%d\n    expr: %q\n    message: \"{{input.module.path}} fails rule %d\"\n", i, exprs[i%len(exprs)], i)
	}
	return b.String()
}

// BenchmarkEvaluate50Rules: 50 rules compiled once, evaluated against one
// admission of 30 dependencies.
func BenchmarkEvaluate50Rules(b *testing.B) {
	set := compileFiles(b, Config{}, map[string]string{"fifty.yaml": fiftyRules()})
	in := benchInput()
	ctx := context.Background()
	d := set.Evaluate(ctx, in, testNow)
	if !d.Allowed || len(d.Results) != 50 {
		b.Fatalf("benchmark input denied: %v", d.Reasons())
	}
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		set.Evaluate(ctx, in, testNow)
	}
	// CPU time, not wall time, per evaluation: the wall clock also counts
	// whatever else the machine is running.
	if c := cpuTime() - cpu; c > 0 {
		b.ReportMetric(float64(c.Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

// BenchmarkEvaluateExamples: the example policies on the same input.
func BenchmarkEvaluateExamples(b *testing.B) {
	set, err := Load("examples")
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput()
	ctx := context.Background()
	if d := set.Evaluate(ctx, in, testNow); !d.Allowed {
		b.Fatalf("benchmark input denied: %v", d.Reasons())
	}
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		set.Evaluate(ctx, in, testNow)
	}
	if c := cpuTime() - cpu; c > 0 {
		b.ReportMetric(float64(c.Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

func BenchmarkCompileExamples(b *testing.B) {
	for b.Loop() {
		if _, err := Load("examples"); err != nil {
			b.Fatal(err)
		}
	}
}
