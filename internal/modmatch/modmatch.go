// Package modmatch matches module paths against comma-separated
// GOPRIVATE-style patterns with the answers of
// golang.org/x/mod/module.MatchPrefixPatterns, faster for long lists:
// patterns without wildcards (one per configured repository, typically)
// are looked up by prefix instead of matched one by one, and a list is
// compiled once. Patterns with wildcards still go to MatchPrefixPatterns.
package modmatch

import (
	"strings"
	"sync"

	"golang.org/x/mod/module"
)

// Match reports whether module.MatchPrefixPatterns(globs, target) would.
func Match(globs, target string) bool {
	return compiled(globs).match(target)
}

// matcher is one compiled pattern list.
type matcher struct {
	// literal holds the patterns without wildcards, and slashes the
	// distinct numbers of slashes they have: such a pattern matches
	// exactly the target prefix with as many slashes.
	literal map[string]struct{}
	slashes []int
	// globs are the patterns with wildcards, comma-separated, for
	// MatchPrefixPatterns.
	globs string
}

func compile(globs string) *matcher {
	m := &matcher{literal: make(map[string]struct{})}
	var wild []string
	for _, orig := range strings.Split(globs, ",") {
		// As MatchPrefixPatterns reads each pattern (one trailing slash
		// off); those with wildcards go to it as they were written.
		g := strings.TrimSuffix(orig, "/")
		if g == "" {
			continue
		}
		if strings.ContainsAny(g, `*?[\`) {
			wild = append(wild, orig)
			continue
		}
		if _, ok := m.literal[g]; !ok {
			m.literal[g] = struct{}{}
			n := strings.Count(g, "/")
			found := false
			for _, s := range m.slashes {
				found = found || s == n
			}
			if !found {
				m.slashes = append(m.slashes, n)
			}
		}
	}
	m.globs = strings.Join(wild, ",")
	return m
}

func (m *matcher) match(target string) bool {
	for _, n := range m.slashes {
		if p, ok := prefix(target, n); ok {
			if _, hit := m.literal[p]; hit {
				return true
			}
		}
	}
	return m.globs != "" && module.MatchPrefixPatterns(m.globs, target)
}

// prefix is target up to its (n+1)th slash, or all of it when it has
// exactly n; false when it has fewer than n.
func prefix(target string, n int) (string, bool) {
	for i := 0; i < len(target); i++ {
		if target[i] == '/' {
			if n == 0 {
				return target[:i], true
			}
			n--
		}
	}
	return target, n == 0
}

// The compiled lists, by their text: a process has a few (its
// configuration's, its policies'), but a bound keeps hostile or changing
// lists from growing it.
var (
	mu    sync.Mutex
	cache = map[string]*matcher{}
)

const maxCached = 256

func compiled(globs string) *matcher {
	mu.Lock()
	defer mu.Unlock()
	m := cache[globs]
	if m == nil {
		if len(cache) >= maxCached {
			clear(cache)
		}
		m = compile(globs)
		cache[globs] = m
	}
	return m
}
