package depsum

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/sync/errgroup"

	"github.com/modgate/modgate/internal/modmatch"
)

// DB is a checksum database for some module paths.
//
// Lookup must be safe for concurrent use. Its error tells the Checker how to
// classify a failure: one satisfying errors.Is(err, fs.ErrNotExist) means the
// database holds no such version (a rejection); one wrapping [ErrSecurity]
// means the database cannot be trusted (a security rejection); any other error
// (including ctx's) means the database could not be asked (transient).
type DB interface {
	// Lookup returns the go.sum lines the database holds for path@version:
	// both the "path version h1:…" and the "path version/go.mod h1:…" line.
	Lookup(ctx context.Context, m module.Version) ([]string, error)
}

// DBFunc adapts a function to [DB].
type DBFunc func(ctx context.Context, m module.Version) ([]string, error)

// Lookup calls f.
func (f DBFunc) Lookup(ctx context.Context, m module.Version) ([]string, error) { return f(ctx, m) }

// Checker checks a module's go.mod and go.sum against the checksum databases.
// Its fields are read, never written, by Check, which is safe for concurrent
// use.
type Checker struct {
	// Public is the database for module paths that match no PrivatePatterns:
	// normally a [SumDB] for sum.golang.org. Nil is allowed only if every
	// dependency is private; a public go.sum line then makes Check fail with
	// [ErrConfig] (not a rejection: the module is not at fault).
	Public DB
	// Private is modgate's own checksum database, for paths matching
	// PrivatePatterns. Nil with private lines in go.sum: [ErrConfig].
	Private DB
	// PrivatePatterns are GOPRIVATE-syntax patterns (as matched by
	// module.MatchPrefixPatterns) of the module paths modgate publishes.
	PrivatePatterns []string
	// Concurrency bounds parallel lookups. Default 8.
	Concurrency int
	// LinesOnly checks only the lines go.sum has, against the databases:
	// no requirement needs a line, and go.mod's replace directives are not
	// looked at. That is the check for a module admitted as a dependency
	// of others, whose go.mod replaces and go.sum the go command never
	// uses (a public module often ships an incomplete go.sum, or none).
	LinesOnly bool
}

// Validate reports a configuration that cannot work: no database at all,
// private patterns without a private database or the reverse, or a pattern
// GOPRIVATE would not take. A missing Public database is allowed (see Public).
func (c *Checker) Validate() error {
	if c.Public == nil && c.Private == nil {
		return fmt.Errorf("%w: no checksum database", ErrConfig)
	}
	if (c.Private == nil) != (len(c.PrivatePatterns) == 0) {
		return fmt.Errorf("%w: a private checksum database and private patterns go together", ErrConfig)
	}
	for _, p := range c.PrivatePatterns {
		// Check validates on every call, with a pattern per configured
		// repository: one look for anything unusual, most find none.
		if p != "" && !strings.ContainsAny(p, ", \t[\\") {
			continue
		}
		if p == "" || strings.ContainsAny(p, ", \t") {
			return fmt.Errorf("%w: private pattern %q: empty, or with a comma or space", ErrConfig, p)
		}
		// Only a class or an escape can be malformed.
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("%w: private pattern %q: %v", ErrConfig, p, err)
		}
	}
	return nil
}

// Report lists every go.sum line Check verified.
type Report struct {
	Module module.Version
	// Checked holds each distinct go.sum line once, in go.sum order. It is
	// empty when go.mod or go.sum did not parse.
	Checked []Checked
}

// Checked is the verdict on one go.sum line.
type Checked struct {
	Line
	DB string // "public" or "private": the database the line was checked against
	OK bool   // the database holds exactly this hash
}

// Check checks the go.mod and go.sum of module m (m itself is not looked up:
// it is being admitted). It returns a report of every go.sum line checked and
// an error that is nil when every check passed, a [*CheckErrors] listing every
// problem found, or an error wrapping [ErrConfig] or the context's error when
// it could not check (see [IsTransient]).
//
// The go.mod checks:
//
//   - A replace directive to a local directory is refused ([ErrLocalReplace]).
//     A replace by another module version makes the replacement the module
//     whose go.sum lines are needed.
//   - Every requirement, direct or "// indirect", needs its "/go.mod" line:
//     the go command loads the go.mod of every module in the (pruned) module
//     graph, and go.mod lists them all for go ≥ 1.17.
//   - Every direct requirement needs its zip line too ([ErrMissing]). That is
//     an approximation of what `go build -mod=readonly ./...` needs, made
//     without loading packages: the main module's own imports are provided by
//     the modules it requires directly (since go 1.17, go mod tidy marks a
//     requirement "// indirect" exactly when no package of the main module
//     imports from it), and the zip lines of indirect requirements are needed
//     only for the packages of direct dependencies that import them, which
//     would take downloading those dependencies to know. An indirect module's
//     zip line that is present is verified like every other line. For a
//     go.mod older than go 1.17 the check is weaker, as such a go.mod need
//     not list every module that provides packages.
//
// The go.sum checks: every line, including lines for modules go.mod does not
// name, is looked up in the database that is authoritative for its path
// (Private if it matches PrivatePatterns, else Public), one lookup per module
// version, in parallel. A line whose hash the database does not hold is a
// security problem ([ErrMismatch]), naming both hashes; a version the database
// does not have is [ErrNotInDB]. Unlike the go command, which accepts a line
// when the database has no h1: hash of that kind, Check requires the database
// to hold it.
func (c *Checker) Check(ctx context.Context, m module.Version, gomod, gosum []byte) (*Report, error) {
	rep := &Report{Module: m}
	if err := c.Validate(); err != nil {
		return rep, err
	}
	f, err := parseGoMod(m, gomod)
	if err != nil {
		return rep, &CheckErrors{Problems: []*Problem{{Check: "go.mod", Err: err}}}
	}
	lines, err := ParseGoSum(gosum)
	if err != nil {
		return rep, &CheckErrors{Problems: []*Problem{{Check: "go.sum", Err: err}}}
	}
	lines = dedup(lines)
	var problems []*Problem
	if !c.LinesOnly {
		problems = checkGoMod(f, lines)
	}
	perLine, lookups, err := c.route(lines)
	if err != nil {
		return rep, err
	}
	var g errgroup.Group
	g.SetLimit(c.concurrency())
	for _, lk := range lookups {
		if r, ok := c.db(lk.private).(rememberer); ok {
			if lk.lines, ok = r.remembered(lk.m); ok {
				continue
			}
		}
		g.Go(func() error {
			lk.lines, lk.err = c.db(lk.private).Lookup(ctx, lk.m)
			return nil
		})
	}
	g.Wait()
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("checking dependencies of %s: %w", m, err)
	}
	rep.Checked, problems = c.verdicts(lines, perLine, problems)
	if len(problems) > 0 {
		return rep, &CheckErrors{Problems: problems}
	}
	return rep, nil
}

// rememberer is a DB that gives again, without a goroutine, an answer it
// gave before; the lines it returns are only read.
type rememberer interface {
	remembered(m module.Version) ([]string, bool)
}

// lookup is one module version to look up, and the answer.
type lookup struct {
	m       module.Version
	private bool
	lines   []string
	err     error
}

// route picks the database for each line, and makes one lookup per module
// version: perLine[i] is the lookup for lines[i].
func (c *Checker) route(lines []Line) (perLine, lookups []*lookup, err error) {
	private := strings.Join(c.PrivatePatterns, ",")
	byModule := make(map[module.Version]*lookup)
	perLine = make([]*lookup, len(lines))
	for i, l := range lines {
		lk := byModule[l.Module()]
		if lk == nil {
			lk = &lookup{m: l.Module(), private: modmatch.Match(private, l.Path)}
			if c.db(lk.private) == nil {
				return nil, nil, fmt.Errorf("%w: go.sum line %d (%s) needs the %s checksum database, and the Checker has none",
					ErrConfig, l.Num, l.Path, dbKind(lk.private))
			}
			byModule[lk.m] = lk
			lookups = append(lookups, lk)
		}
		perLine[i] = lk
	}
	return perLine, lookups, nil
}

// verdicts compares each line with its lookup's answer, appending problems
// in go.sum order: one per failed lookup (at its first line), one per line
// the database disagrees with.
func (c *Checker) verdicts(lines []Line, perLine []*lookup, problems []*Problem) ([]Checked, []*Problem) {
	checked := make([]Checked, len(lines))
	reported := make(map[*lookup]bool)
	for i, l := range lines {
		lk := perLine[i]
		checked[i] = Checked{Line: l, DB: dbKind(lk.private)}
		db := c.db(lk.private)
		var err error
		switch {
		case lk.err == nil:
			err = compare(db, lk.private, l, lk.lines)
		case !reported[lk]:
			reported[lk] = true
			err = lookupProblem(db, lk.private, lk.err)
		default:
			continue // already reported
		}
		if err != nil {
			problems = append(problems, &Problem{Path: l.Path, Version: l.Version, Check: "checksum", Err: err})
			continue
		}
		checked[i].OK = true
	}
	return checked, problems
}

func (c *Checker) db(private bool) DB {
	if private {
		return c.Private
	}
	return c.Public
}

func (c *Checker) concurrency() int {
	if c.Concurrency <= 0 {
		return 8
	}
	return c.Concurrency
}

func dbKind(private bool) string {
	if private {
		return "private"
	}
	return "public"
}

// dbName names a database in messages: its own name if it has one.
func dbName(db DB, private bool) string {
	if n, ok := db.(interface{ Name() string }); ok && n.Name() != "" {
		return fmt.Sprintf("the %s checksum database %s", dbKind(private), n.Name())
	}
	return fmt.Sprintf("the %s checksum database", dbKind(private))
}

// lookupProblem classifies a failed lookup (see the DB contract).
func lookupProblem(db DB, private bool, err error) error {
	switch {
	case errors.Is(err, ErrSecurity):
		return err
	case errors.Is(err, fs.ErrNotExist):
		if private {
			return fmt.Errorf("%w: %s has no record of it (not admitted by modgate): %v", ErrNotInDB, dbName(db, private), err)
		}
		return fmt.Errorf("%w: %s has no record of it: %v", ErrNotInDB, dbName(db, private), err)
	case errors.Is(err, ErrUnavailable):
		return err
	default:
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, dbName(db, private), err)
	}
}

// compare checks one go.sum line against the lines the database returned.
func compare(db DB, private bool, l Line, dbLines []string) error {
	var have []string // the database's h1: hashes for this line's key
	for _, s := range dbLines {
		key, hash, ok := cutLast(s)
		if !ok || !l.isKey(key) || !strings.HasPrefix(hash, "h1:") {
			continue
		}
		if hash == l.Hash {
			return nil
		}
		have = append(have, hash)
	}
	if len(have) == 0 {
		return fmt.Errorf("%w: %s has a record of %s@%s but no %s",
			ErrNotInDB, dbName(db, private), l.Path, l.Version, l.what())
	}
	return fmt.Errorf("%w: %s: go.sum line %d has %s, %s has %s",
		ErrMismatch, l.what(), l.Num, l.Hash, dbName(db, private), strings.Join(have, " or "))
}

// cutLast splits a go.sum line into "path version[/go.mod]" and its hash.
func cutLast(s string) (key, hash string, ok bool) {
	i := strings.LastIndexByte(s, ' ')
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// dedup drops repeated identical lines, keeping the first.
func dedup(lines []Line) []Line {
	seen := make(map[lineID]bool, len(lines))
	out := lines[:0:0]
	for _, l := range lines {
		if id := l.id(); !seen[id] {
			seen[id] = true
			out = append(out, l)
		}
	}
	return out
}

// parseGoMod parses the main module's go.mod strictly: versions must be
// canonical (modfile would otherwise rewrite "v1.2" to "v1.2.0" silently),
// and it must be the go.mod of m.
func parseGoMod(m module.Version, data []byte) (*modfile.File, error) {
	canonical := func(path, v string) (string, error) {
		if module.CanonicalVersion(v) != v {
			return "", fmt.Errorf("%s@%s: version is not canonical", path, quote(v))
		}
		return v, nil
	}
	f, err := modfile.Parse("go.mod", data, canonical)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadGoMod, oneLine(err.Error()))
	}
	if f.Module == nil {
		return nil, fmt.Errorf("%w: no module directive", ErrBadGoMod)
	}
	if m.Path != "" && f.Module.Mod.Path != m.Path {
		return nil, fmt.Errorf("%w: it declares module %s, not %s", ErrBadGoMod, f.Module.Mod.Path, m.Path)
	}
	return f, nil
}

// checkGoMod refuses local replacements and finds requirements without the
// go.sum lines they need.
func checkGoMod(f *modfile.File, lines []Line) []*Problem {
	var problems []*Problem
	exact := make(map[module.Version]module.Version)
	wildcard := make(map[string]module.Version)
	for _, r := range f.Replace {
		if r.New.Version == "" {
			problems = append(problems, &Problem{Path: r.Old.Path, Version: r.Old.Version, Check: "replace",
				Err: fmt.Errorf("%w %s: its contents cannot be pinned by go.sum or a checksum database", ErrLocalReplace, quote(r.New.Path))})
		}
		if r.Old.Version == "" {
			wildcard[r.Old.Path] = r.New
		} else {
			exact[r.Old] = r.New
		}
	}
	have := make(map[lineID]bool, len(lines))
	for _, l := range lines {
		l.Hash = ""
		have[l.id()] = true
	}
	for _, r := range f.Require {
		target, via := r.Mod, ""
		if n, ok := exact[r.Mod]; ok {
			target, via = n, fmt.Sprintf(" (replacement for %s)", r.Mod)
		} else if n, ok := wildcard[r.Mod.Path]; ok {
			target, via = n, fmt.Sprintf(" (replacement for %s)", r.Mod)
		}
		if target.Version == "" {
			continue // a local replacement, refused above
		}
		need := []Line{{Path: target.Path, Version: target.Version, GoMod: true}}
		if !r.Indirect {
			need = append(need, Line{Path: target.Path, Version: target.Version})
		}
		for _, l := range need {
			if have[l.id()] {
				continue
			}
			why := "every requirement needs its go.mod hash"
			if !l.GoMod {
				why = "a direct requirement needs its module zip hash (go mod tidy adds it, or marks the requirement // indirect)"
			}
			problems = append(problems, &Problem{Path: target.Path, Version: target.Version, Check: "require",
				Err: fmt.Errorf("%w: %q%s: %s", ErrMissing, l.key()+" h1:…", via, why)})
		}
	}
	return problems
}
