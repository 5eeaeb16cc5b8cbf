package policies

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exampleInput is an admission every example policy allows: a release of
// a platform module, signed by the release team, from the platform's
// repository, with three dependencies.
func exampleInput() *Input {
	day := 24 * time.Hour
	return &Input{
		Module:     NewModule("corp.example/platform/hello", "v1.2.0", testNow.Add(-2*day)),
		Repository: "https://git.corp.example/platform/hello",
		Tag: Tag{Name: "v1.2.0", Time: testNow.Add(-2 * day), SignerType: "openpgp",
			Fingerprint: "3AA5C34371567BD2C2A5A2D5F1C6B9E3A0C1D2E4",
			Principal:   "Release Bot <release-bot@corp.example>", SignerGroup: "release-team"},
		GoMod: GoMod{Go: "1.22", Toolchain: "go1.22.4",
			Requires: []Require{{Path: "corp.example/platform/log", Version: "v1.5.0"}, {Path: "github.com/google/uuid", Version: "v1.6.0"}, {Path: "golang.org/x/sys", Version: "v0.20.0", Indirect: true}}},
		Dependencies: []Dependency{
			{Path: "corp.example/platform/log", Version: "v1.5.0", Direct: true, Licenses: []string{"Apache-2.0"}, Admitted: true, Time: testNow.Add(-3 * day)},
			{Path: "github.com/google/uuid", Version: "v1.6.0", Direct: true, Public: true, Licenses: []string{"BSD-3-Clause"}, Time: testNow.Add(-400 * day)},
			{Path: "golang.org/x/sys", Version: "v0.20.0", Public: true, Licenses: []string{"BSD-3-Clause"}, Time: testNow.Add(-300 * day)},
		},
		Licenses: []string{"Apache-2.0"},
	}
}

// exampleCase changes the example input and says what one example policy,
// alone, must decide: Allowed and the outcome of each named rule.
type exampleCase struct {
	name    string
	change  func(in *Input)
	allowed bool
	rules   map[string]Outcome
	message string // a substring of the messages
}

func dep(path, version string, public bool, age time.Duration, licenses ...string) Dependency {
	d := Dependency{Path: path, Version: version, Direct: true, Public: public, Licenses: licenses}
	if age > 0 {
		d.Time = testNow.Add(-age)
	}
	return d
}

var exampleCases = map[string][]exampleCase{
	"signers.yaml": {
		{name: "release team, openpgp", allowed: true, rules: map[string]Outcome{"release-team": Pass, "ssh-principal": Pass}},
		{name: "release team, ssh, corp principal", allowed: true, change: func(in *Input) {
			in.Tag.SignerType, in.Tag.Principal = "ssh", "alice@corp.example"
		}},
		{name: "another signer group", change: func(in *Input) { in.Tag.SignerGroup = "contractors" },
			rules: map[string]Outcome{"release-team": Denied}, message: "signed by signer group contractors, not by the release team"},
		{name: "unverified signature", change: func(in *Input) { in.Tag = Tag{Name: "v1.2.0"} },
			rules: map[string]Outcome{"release-team": Denied}, message: "signed by no trusted key"},
		{name: "ssh, outside principal", change: func(in *Input) { in.Tag.SignerType, in.Tag.Principal = "ssh", "mallory@evil.example" },
			rules: map[string]Outcome{"release-team": Pass, "ssh-principal": Denied}, message: "mallory@evil.example is not a corp.example principal"},
		{name: "outside corp.example: no policy", change: func(in *Input) { in.Module.Path = "example.com/hello" },
			rules: map[string]Outcome{"no-policy": Denied}},
	},
	"repositories.yaml": {
		{name: "platform module from a platform repository", allowed: true},
		{name: "other team's module from its repository", allowed: true, change: func(in *Input) {
			in.Module.Path, in.Repository = "corp.example/payments/api", "https://git.corp.example/payments/api"
		}},
		{name: "platform module from another team", change: func(in *Input) { in.Repository = "https://git.corp.example/payments/hello" },
			rules: map[string]Outcome{"platform-repositories": Denied, "corp-git-host": Pass}},
		{name: "lookalike host", change: func(in *Input) { in.Repository = "https://git.corp.example.evil.example/platform/hello" },
			rules: map[string]Outcome{"platform-repositories": Denied, "corp-git-host": Denied}},
		{name: "github", change: func(in *Input) {
			in.Module.Path, in.Repository = "corp.example/tools", "https://github.com/corp/tools"
		}, rules: map[string]Outcome{"platform-repositories": Pass, "corp-git-host": Denied}, message: "https://github.com/corp/tools is not on git.corp.example"},
	},
	"licenses.yaml": {
		{name: "allowed licenses", allowed: true, rules: map[string]Outcome{"module-license": Pass, "dependency-licenses": Pass}},
		{name: "dual license, one alternative allowed", allowed: true, change: func(in *Input) { in.Licenses = []string{"MIT OR GPL-3.0-only"} }},
		{name: "two allowed licenses together", allowed: true, change: func(in *Input) { in.Licenses = []string{"MIT AND Apache-2.0"} }},
		{name: "several license files", allowed: true, change: func(in *Input) { in.Licenses = []string{"MIT", "BSD-2-Clause"} }},
		{name: "conjunction with GPL", change: func(in *Input) { in.Licenses = []string{"MIT AND GPL-3.0-only"} },
			rules: map[string]Outcome{"module-license": Denied}},
		{name: "one of several files GPL", change: func(in *Input) { in.Licenses = []string{"MIT", "GPL-2.0-only"} },
			rules: map[string]Outcome{"module-license": Denied}, message: "has licenses [MIT, GPL-2.0-only]"},
		{name: "no license", change: func(in *Input) { in.Licenses = nil }, rules: map[string]Outcome{"module-license": Denied}},
		{name: "unidentified license errors and denies", change: func(in *Input) { in.Licenses = []string{"NOASSERTION"} },
			rules: map[string]Outcome{"module-license": Errored}, message: "unknown license 'NOASSERTION'"},
		{name: "GPL dependency", change: func(in *Input) {
			in.Dependencies[1].Licenses = []string{"GPL-3.0-or-later"}
		}, rules: map[string]Outcome{"module-license": Pass, "dependency-licenses": Denied}, message: "github.com/google/uuid@v1.6.0"},
		{name: "dependency without license", change: func(in *Input) { in.Dependencies[2].Licenses = nil },
			rules: map[string]Outcome{"dependency-licenses": Denied}, message: "golang.org/x/sys@v0.20.0"},
	},
	"replaces.yaml": {
		{name: "no replaces", allowed: true, rules: map[string]Outcome{"no-local-replace": Pass}},
		{name: "replace by a module version", allowed: true, change: func(in *Input) {
			in.GoMod.Replaces = []Replace{{OldPath: "github.com/google/uuid", NewPath: "github.com/corp/uuid", NewVersion: "v1.6.1"}}
		}},
		{name: "replace by a directory", change: func(in *Input) {
			in.GoMod.Replaces = []Replace{{OldPath: "github.com/google/uuid", NewPath: "github.com/corp/uuid", NewVersion: "v1.6.1"},
				{OldPath: "corp.example/platform/log", NewPath: "../log", Local: true}}
		}, rules: map[string]Outcome{"no-local-replace": Denied}, message: "corp.example/platform/log => ../log"},
	},
	"prerelease.yaml": {
		{name: "release", allowed: true, rules: map[string]Outcome{"no-prerelease": Pass, "no-prerelease-dependencies": Pass}},
		{name: "prerelease on a stable path", change: func(in *Input) { in.Module = NewModule(in.Module.Path, "v1.3.0-rc.1", in.Module.Time) },
			rules: map[string]Outcome{"no-prerelease": Denied}, message: "v1.3.0-rc.1 is a prerelease"},
		{name: "sdk is stable too", change: func(in *Input) { in.Module = NewModule("corp.example/sdk/go", "v2.0.0-beta.1", in.Module.Time) },
			rules: map[string]Outcome{"no-prerelease": Denied}},
		{name: "prerelease elsewhere: no policy here", change: func(in *Input) { in.Module = NewModule("corp.example/tools", "v0.1.0-alpha", in.Module.Time) },
			rules: map[string]Outcome{"no-policy": Denied}},
		{name: "direct pseudo-version dependency warns", allowed: true, change: func(in *Input) {
			in.Dependencies[1].Version = "v1.6.1-0.20240501000000-0123456789ab"
		}, rules: map[string]Outcome{"no-prerelease-dependencies": Warned}, message: "github.com/google/uuid@v1.6.1-0.20240501000000-0123456789ab"},
		{name: "indirect prerelease dependency is fine", allowed: true, change: func(in *Input) { in.Dependencies[2].Version = "v0.21.0-rc.1" },
			rules: map[string]Outcome{"no-prerelease-dependencies": Pass}},
		{name: "invalid dependency version errors", change: func(in *Input) { in.Dependencies[1].Version = "latest" },
			rules: map[string]Outcome{"no-prerelease-dependencies": Errored}},
	},
	"min-age.yaml": {
		{name: "old public dependencies", allowed: true, rules: map[string]Outcome{"public-dependencies-7-days": Pass}},
		{name: "fresh private dependency", allowed: true, change: func(in *Input) { in.Dependencies[0].Time = testNow.Add(-time.Minute) }},
		{name: "exactly seven days", allowed: true, change: func(in *Input) { in.Dependencies[1].Time = testNow.Add(-7 * 24 * time.Hour) }},
		{name: "public dependency of yesterday", change: func(in *Input) { in.Dependencies[1].Time = testNow.Add(-24 * time.Hour) },
			rules: map[string]Outcome{"public-dependencies-7-days": Denied}, message: "github.com/google/uuid@v1.6.0"},
		{name: "public dependency of unknown age", change: func(in *Input) { in.Dependencies[2].Time = time.Time{} },
			rules: map[string]Outcome{"public-dependencies-7-days": Denied}, message: "golang.org/x/sys@v0.20.0"},
		{name: "published after now", change: func(in *Input) { in.Dependencies[2].Time = testNow.Add(time.Hour) },
			rules: map[string]Outcome{"public-dependencies-7-days": Denied}},
	},
	"denylist.yaml": {
		{name: "nothing bad", allowed: true, rules: map[string]Outcome{"known-bad-versions": Pass, "banned-modules": Pass}},
		{name: "known-bad dependency", change: func(in *Input) {
			in.Dependencies = append(in.Dependencies, dep("github.com/example/compromised", "v1.4.2", true, 100*24*time.Hour, "MIT"))
		}, rules: map[string]Outcome{"known-bad-versions": Denied}, message: "known-bad module versions: github.com/example/compromised@v1.4.2"},
		{name: "good version of the same module", allowed: true, change: func(in *Input) {
			in.Dependencies = append(in.Dependencies, dep("github.com/example/compromised", "v1.4.4", true, 100*24*time.Hour, "MIT"))
		}},
		{name: "the module itself", change: func(in *Input) { in.Module = NewModule("corp.example/payments", "v2.0.1", in.Module.Time) },
			rules: map[string]Outcome{"known-bad-versions": Denied}, message: "corp.example/payments@v2.0.1"},
		{name: "banned module, any version", change: func(in *Input) {
			in.Dependencies = append(in.Dependencies, dep("github.com/evil-corp/miner/v3", "v3.0.0", true, 100*24*time.Hour, "MIT"))
		}, rules: map[string]Outcome{"banned-modules": Denied, "known-bad-versions": Pass}, message: "github.com/evil-corp/miner/v3"},
		{name: "lookalike of a banned path", allowed: true, change: func(in *Input) {
			in.Dependencies = append(in.Dependencies, dep("github.com/evil-corporation/x", "v1.0.0", true, 100*24*time.Hour, "MIT"))
		}},
	},
	"go-version.yaml": {
		{name: "go 1.22, toolchain go1.22.4", allowed: true, rules: map[string]Outcome{"go-directive": Pass, "toolchain": Pass}},
		{name: "go 1.23.1, no toolchain", allowed: true, change: func(in *Input) { in.GoMod.Go, in.GoMod.Toolchain = "1.23.1", "" }},
		{name: "go 1.24rc1", allowed: true, change: func(in *Input) { in.GoMod.Go, in.GoMod.Toolchain = "1.24rc1", "go1.24rc1" }},
		{name: "go 1.21", change: func(in *Input) { in.GoMod.Go = "1.21" },
			rules: map[string]Outcome{"go-directive": Denied, "toolchain": Pass}, message: "go.mod says go 1.21"},
		{name: "go 1.9 is older than 1.22, not newer", change: func(in *Input) { in.GoMod.Go = "1.9" }, rules: map[string]Outcome{"go-directive": Denied}},
		{name: "no go directive", change: func(in *Input) { in.GoMod.Go = "" },
			rules: map[string]Outcome{"go-directive": Denied}, message: "go.mod says go (none)"},
		{name: "old toolchain", change: func(in *Input) { in.GoMod.Toolchain = "go1.21.13" }, rules: map[string]Outcome{"toolchain": Denied}},
		{name: "garbage go version errors", change: func(in *Input) { in.GoMod.Go = "1.x" }, rules: map[string]Outcome{"go-directive": Errored}},
	},
}

// TestExamplePolicies evaluates each example policy alone against allow
// and deny cases.
func TestExamplePolicies(t *testing.T) {
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		cases, ok := exampleCases[name]
		if !ok {
			t.Errorf("%s: no test cases", name)
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(path, data)
		if err != nil {
			t.Fatal(err)
		}
		set, err := Compile([]*File{f})
		if err != nil {
			t.Fatal(err)
		}
		var allows, denies int
		for _, tc := range cases {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				in := exampleInput()
				if tc.change != nil {
					tc.change(in)
				}
				d := set.Evaluate(context.Background(), in, testNow)
				if d.Allowed != tc.allowed {
					t.Errorf("Allowed = %v, want %v: %s %v", d.Allowed, tc.allowed, outcomes(d), d.Reasons())
				}
				got := map[string]RuleResult{}
				var msgs []string
				for _, r := range d.Results {
					got[r.Rule] = r
					msgs = append(msgs, r.Message)
				}
				for rule, want := range tc.rules {
					if got[rule].Result != want {
						t.Errorf("%s: %q, want %q (%s)", rule, got[rule].Result, want, got[rule].Message)
					}
				}
				if !strings.Contains(strings.Join(msgs, "\n"), tc.message) {
					t.Errorf("messages %q do not contain %q", msgs, tc.message)
				}
			})
			if tc.allowed {
				allows++
			} else {
				denies++
			}
		}
		if allows == 0 || denies == 0 {
			t.Errorf("%s: %d allow and %d deny cases; want both", name, allows, denies)
		}
	}
	for name := range exampleCases {
		if _, err := os.Stat(filepath.Join("examples", name)); err != nil {
			t.Errorf("cases for a missing example: %v", err)
		}
	}
}

// TestExamples: the example set compiles, allows the example input, and
// passes its own test files (examples/tests), as `modgate policy test`
// would run them.
func TestExamples(t *testing.T) {
	set, err := Load("examples")
	if err != nil {
		t.Fatal(err)
	}
	if d := set.Evaluate(context.Background(), exampleInput(), testNow); !d.Allowed || len(d.Policies) != 8 {
		t.Errorf("example input: %v %s %v", d.Policies, outcomes(d), d.Reasons())
	}
	results, err := RunTests(set, "examples/tests")
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 20 {
		t.Errorf("only %d test cases", len(results))
	}
	for _, r := range results {
		if !r.Passed {
			t.Errorf("%s: %s: %s", r.File, r.Case, strings.Join(r.Failures, "; "))
		}
	}
}
