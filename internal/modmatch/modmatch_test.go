package modmatch

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/module"
)

var cases = []struct{ globs, target string }{
	{"corp.example", "corp.example"},
	{"corp.example", "corp.example/a/b"},
	{"corp.example", "corp.examples/a"},
	{"corp.example/", "corp.example/a"},
	{"corp.example/a", "corp.example"},
	{"corp.example/a", "corp.example/a"},
	{"corp.example/a", "corp.example/ab"},
	{"corp.example/a", "corp.example/a/v2"},
	{"corp.example/*", "corp.example/x/y"},
	{"*.example", "corp.example/x"},
	{"corp.example/a,,other.example", "other.example/z"},
	{"corp.example/a/b", "corp.example/a"},
	{"a\\b", "a\\b"},
	{"a[", "a["},
	{"corp.example//", "corp.example/"},
	{"", "x"},
	{",", ""},
	{"x", ""},
	{"/", "/"},
	{"a/", "a/"},
	{"a//b", "a//b/c"},
}

// TestMatch: the answers of module.MatchPrefixPatterns, on the edges of its
// reading (trailing slashes, empty patterns and elements, wildcards and
// escapes, too few elements).
func TestMatch(t *testing.T) {
	for _, c := range cases {
		if got, want := Match(c.globs, c.target), module.MatchPrefixPatterns(c.globs, c.target); got != want {
			t.Errorf("Match(%q, %q) = %v, MatchPrefixPatterns says %v", c.globs, c.target, got, want)
		}
	}
}

// FuzzMatch holds Match to module.MatchPrefixPatterns on any input.
func FuzzMatch(f *testing.F) {
	for _, c := range cases {
		f.Add(c.globs, c.target)
	}
	f.Fuzz(func(t *testing.T, globs, target string) {
		if got, want := compile(globs).match(target), module.MatchPrefixPatterns(globs, target); got != want {
			t.Fatalf("Match(%q, %q) = %v, MatchPrefixPatterns says %v", globs, target, got, want)
		}
	})
}

// BenchmarkMatch: a configuration with one module path per repository
// (200), and a go.sum's worth of paths to route.
func BenchmarkMatch(b *testing.B) {
	var pats []string
	for i := range 200 {
		pats = append(pats, fmt.Sprintf("git.corp.example/team%d/service%d", i%7, i))
	}
	globs := strings.Join(pats, ",")
	targets := []string{"github.com/stretchr/testify", "git.corp.example/team3/service150/v2", "golang.org/x/mod", "git.corp.example/team9/none"}
	b.Run("MatchPrefixPatterns", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			module.MatchPrefixPatterns(globs, targets[i%len(targets)])
		}
	})
	b.Run("Match", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			Match(globs, targets[i%len(targets)])
		}
	})
}

// BenchmarkMatchParallel: Match from every CPU at once, as workers call it.
func BenchmarkMatchParallel(b *testing.B) {
	var pats []string
	for i := range 200 {
		pats = append(pats, fmt.Sprintf("git.corp.example/team%d/service%d", i%7, i))
	}
	globs := strings.Join(pats, ",")
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			Match(globs, "git.corp.example/team3/service150/v2")
		}
	})
}
