// Package reverify runs re-verification: it plans which admitted versions a
// run covers, splits them into shards (one queue job each), re-proves every
// version of a shard concurrently with a pipeline.Reverifier, and acts on
// the result: a version that no longer passes is quarantined (never
// deleted), a quarantined version that passes again is restored, and one
// that still passes gets a new signed verification summary. Reports of
// shards merge into the report of the run.
package reverify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/sync/errgroup"

	"github.com/modgate/modgate/pipeline"
	"github.com/modgate/modgate/store"
)

// Store is what a run reads and changes: *store.Dir.
type Store interface {
	Walk(ctx context.Context, fn func(module.Version) error) error
	OpenFile(ctx context.Context, m module.Version, suffix string) (*os.File, error)
	Quarantined(ctx context.Context, m module.Version) (*store.Quarantine, error)
	SetQuarantine(ctx context.Context, m module.Version, q store.Quarantine) error
	ClearQuarantine(ctx context.Context, m module.Version) (bool, error)
	WriteReverifiedBatch(ctx context.Context, ms []module.Version, envelope []byte) error
}

// Checker re-verifies one version, and signs a new verification summary
// for those that passed: *pipeline.Reverifier.
type Checker interface {
	Version(ctx context.Context, m module.Version) (*pipeline.Reverified, error)
	Sign(ctx context.Context, rs []*pipeline.Reverified, run string) ([]byte, error)
}

// Scope selects the versions of a run.
type Scope struct {
	All     bool
	Module  string // with Version empty: every version of the module
	Version string
	// Since keeps the versions admitted (published) at or after it.
	Since time.Time
}

// ParseScope reads the command line's selection: "--all", a MODULE, a
// MODULE@VERSION, or a --since time (RFC 3339) or duration before now.
func ParseScope(all bool, target, since string, now time.Time) (Scope, error) {
	var s Scope
	n := 0
	if all {
		s.All = true
		n++
	}
	if target != "" {
		n++
		path, version, _ := strings.Cut(target, "@")
		if err := module.CheckPath(path); err != nil {
			return s, fmt.Errorf("reverify %s: %v", target, err)
		}
		if version != "" {
			if err := module.Check(path, version); err != nil || semver.Canonical(version) != version {
				return s, fmt.Errorf("reverify %s: want a canonical version like v1.2.3", target)
			}
		}
		s.Module, s.Version = path, version
	}
	if since != "" {
		n++
		if d, err := time.ParseDuration(since); err == nil && d > 0 {
			s.Since = now.Add(-d)
		} else if t, err := time.Parse(time.RFC3339, since); err == nil {
			s.Since = t
		} else {
			return s, fmt.Errorf("reverify --since %q: want a duration (24h) or an RFC 3339 time", since)
		}
	}
	if n != 1 {
		return s, errors.New("reverify: give exactly one of --all, MODULE[@VERSION] or --since")
	}
	return s, nil
}

// Plan lists the published versions in scope, quarantined ones included
// (they are re-verified so that they can be restored), in store order.
func Plan(ctx context.Context, st Store, s Scope) ([]module.Version, error) {
	if s.Module != "" && s.Version != "" {
		m := module.Version{Path: s.Module, Version: s.Version}
		f, err := st.OpenFile(ctx, m, ".info")
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s is not admitted", m)
			}
			return nil, err
		}
		f.Close()
		return []module.Version{m}, nil
	}
	var vs []module.Version
	err := st.Walk(ctx, func(m module.Version) error {
		if s.Module != "" && m.Path != s.Module {
			return nil
		}
		if !s.Since.IsZero() {
			f, err := st.OpenFile(ctx, m, ".info")
			if err != nil {
				return err
			}
			fi, err := f.Stat()
			f.Close()
			if err != nil {
				return err
			}
			if fi.ModTime().Before(s.Since) {
				return nil
			}
		}
		vs = append(vs, m)
		return nil
	})
	if err == nil && s.Module != "" && len(vs) == 0 {
		err = fmt.Errorf("module %s has no admitted versions", s.Module)
	}
	return vs, err
}

// Split cuts vs into shards of at most size versions, as module@version
// strings.
func Split(vs []module.Version, size int) [][]string {
	if size < 1 {
		size = 1
	}
	var shards [][]string
	for len(vs) > 0 {
		n := min(size, len(vs))
		shard := make([]string, n)
		for i, m := range vs[:n] {
			shard[i] = m.String()
		}
		shards = append(shards, shard)
		vs = vs[n:]
	}
	return shards
}

// ParseVersions reads a shard's module@version strings.
func ParseVersions(ss []string) ([]module.Version, error) {
	vs := make([]module.Version, len(ss))
	for i, s := range ss {
		path, version, ok := strings.Cut(s, "@")
		if !ok || module.Check(path, version) != nil {
			return nil, fmt.Errorf("reverify: bad module version %q in shard", s)
		}
		vs[i] = module.Version{Path: path, Version: version}
	}
	return vs, nil
}

// Outcome is what a run concluded for one version.
type Outcome string

const (
	Good             Outcome = "good"              // passed, and was not quarantined
	Quarantined      Outcome = "quarantined"       // failed now, quarantined by this run
	StillQuarantined Outcome = "still-quarantined" // failed, and was already quarantined
	Restored         Outcome = "restored"          // passed, and its quarantine was lifted
	Errored          Outcome = "error"             // could not be checked; state unchanged
)

// Outcomes in report order.
var Outcomes = []Outcome{Good, Quarantined, StillQuarantined, Restored, Errored}

// Change is the outcome of one version that is not simply good.
type Change struct {
	Module   string             `json:"module"`
	Version  string             `json:"version"`
	Outcome  Outcome            `json:"outcome"`
	Reason   string             `json:"reason,omitempty"`
	Problems []pipeline.Problem `json:"problems,omitempty"`
}

// Key is module@version.
func (c Change) Key() string { return c.Module + "@" + c.Version }

// ShardReport is the result of one shard, or, merged, of a run.
type ShardReport struct {
	Run      string          `json:"run"`
	Versions int             `json:"versions"`
	Counts   map[Outcome]int `json:"counts"`
	// Bytes are the stored zip bytes re-hashed.
	Bytes int64 `json:"bytes"`
	// Remembered counts the versions a run had proven before from the
	// same bytes under the same trust: their files were read and hashed
	// again, and only what changes with time was checked again.
	Remembered int `json:"remembered,omitempty"`
	// Changes lists every version not simply good, sorted.
	Changes []Change `json:"changes,omitempty"`
	// Skipped counts checks that could not run for lack of a record.
	Skipped map[string]int `json:"skipped,omitempty"`
	// LogFindings are problems of the checksum log as a whole (a fork or
	// rollback against the previous run's head).
	LogFindings []string `json:"log_findings,omitempty"`
	// Warnings are what will fail versions later if nothing is done (a
	// signing key about to expire), once each.
	Warnings   []string  `json:"warnings,omitempty"`
	Started    time.Time `json:"started"`
	DurationMS float64   `json:"duration_ms"`
	mu         sync.Mutex
}

// Options configure RunShard.
type Options struct {
	Run     string
	EventID string
	// Concurrency is the number of versions checked at once; default
	// runtime.NumCPU().
	Concurrency int
	// Now stamps quarantines; default time.Now.
	Now func() time.Time
	// Progress, when set, is called after each version.
	Progress func(m module.Version, o Outcome)
	// Changed, when set, is called for every quarantine and restore, after
	// the store changed: to audit it and announce it.
	Changed func(c Change)
	// Busy, when set, reports that admissions are running: the shard then
	// pauses, checking one version at a time at most every half second,
	// until they are done, so that a large re-verification never slows
	// them down much.
	Busy func() bool
	// BatchSize is how many versions that passed one signed summary names
	// at most; default DefaultBatchSize. A batch is signed and stored as
	// soon as it is full, while the other versions are being checked.
	BatchSize int
}

// DefaultBatchSize bounds the versions one re-verification summary names:
// every one of them is served the whole statement, a few hundred bytes a
// version.
const DefaultBatchSize = 256

// RunShard re-verifies vs with c and applies the outcomes to st. Its error
// is for failures to run at all; a version that could not be checked is an
// Errored outcome and keeps its state.
func RunShard(ctx context.Context, c Checker, st Store, vs []module.Version, o Options) (*ShardReport, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	n := o.Concurrency
	if n <= 0 {
		n = runtime.NumCPU()
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	r := &ShardReport{Run: o.Run, Versions: len(vs), Counts: make(map[Outcome]int), Started: o.Now().UTC()}
	start := time.Now()
	var passed []*pipeline.Reverified
	var passedMods []module.Version
	// sign signs a batch of versions that passed and stores it as their
	// latest re-verification summary.
	sign := func(ctx context.Context, rs []*pipeline.Reverified, ms []module.Version) error {
		env, err := c.Sign(ctx, rs, o.Run)
		if err != nil || env == nil {
			return err
		}
		return st.WriteReverifiedBatch(ctx, ms, env)
	}
	var running atomic.Int64
	// n long-lived workers take the versions in turn by an atomic index
	// (a goroutine per version grew its stack anew every time, and a
	// channel handing them out cost a futex wake-up a version).
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	check := func(m module.Version) error {
		// Make way for admissions: while one runs, versions wait, and
		// one goes ahead at most every maxPause so the run still ends.
		for waited := time.Duration(0); o.Busy != nil && o.Busy() && gctx.Err() == nil; waited += pauseStep {
			if waited >= maxPause && running.Load() == 0 {
				break
			}
			time.Sleep(pauseStep)
		}
		running.Add(1)
		ch, res, err := one(gctx, c, st, m, o)
		running.Add(-1)
		if err != nil {
			return err
		}
		var bytes int64
		var skipped []string
		remembered := 0
		if res != nil {
			bytes, skipped = res.Bytes, res.Skipped
			if res.Remembered {
				remembered = 1
			}
		}
		r.mu.Lock()
		var batch []*pipeline.Reverified
		var batchMods []module.Version
		if res != nil && res.Passed() {
			passed = append(passed, res)
			passedMods = append(passedMods, m)
			if len(passed) >= o.BatchSize {
				batch, batchMods, passed, passedMods = passed, passedMods, nil, nil
			}
		}
		r.Counts[ch.Outcome]++
		r.Bytes += bytes
		r.Remembered += remembered
		if ch.Outcome != Good {
			r.Changes = append(r.Changes, ch)
		}
		for _, s := range skipped {
			if r.Skipped == nil {
				r.Skipped = make(map[string]int)
			}
			r.Skipped[s]++
		}
		r.mu.Unlock()
		if o.Progress != nil {
			o.Progress(m, ch.Outcome)
		}
		if o.Changed != nil && (ch.Outcome == Quarantined || ch.Outcome == Restored) {
			o.Changed(ch)
		}
		if batch != nil {
			return sign(gctx, batch, batchMods)
		}
		return nil
	}
	for range min(n, len(vs)) {
		g.Go(func() error {
			for gctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(vs)) {
					return nil
				}
				if err := check(vs[i]); err != nil {
					return err
				}
			}
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err // cancelled after the last version was handed out
	}
	// The last batch of the versions that passed.
	if len(passed) > 0 {
		if err := sign(ctx, passed, passedMods); err != nil {
			return nil, err
		}
	}
	r.sort()
	r.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	return r, nil
}

// While admissions run, a shard checks versions only when one has waited
// maxPause and no other is being checked.
const (
	pauseStep = 5 * time.Millisecond
	maxPause  = 500 * time.Millisecond
)

// one checks m and applies the outcome. Its error stops the shard: the
// store could not be changed, or ctx ended.
func one(ctx context.Context, c Checker, st Store, m module.Version, o Options) (Change, *pipeline.Reverified, error) {
	ch := Change{Module: m.Path, Version: m.Version}
	res, err := c.Version(ctx, m)
	if err != nil {
		if ctx.Err() != nil {
			return ch, nil, ctx.Err()
		}
		ch.Outcome, ch.Reason = Errored, err.Error()
		return ch, nil, nil
	}
	q := res.Quarantine
	if !res.QuarantineRead {
		if q, err = st.Quarantined(ctx, m); err != nil {
			return ch, nil, err
		}
	}
	if res.Passed() {
		ch.Outcome = Good
		if q != nil {
			if _, err := st.ClearQuarantine(ctx, m); err != nil {
				return ch, nil, err
			}
			ch.Outcome, ch.Reason = Restored, "passes again; was quarantined: "+q.Reason
		}
		return ch, res, nil
	}
	ch.Problems, ch.Reason = res.Problems, res.Reason()
	ch.Outcome = StillQuarantined
	if q == nil || q.Reason != ch.Reason {
		if q == nil {
			ch.Outcome = Quarantined
		}
		err := st.SetQuarantine(ctx, m, store.Quarantine{Reason: ch.Reason, Findings: res.Lines(),
			Time: o.Now().UTC(), Run: o.Run, EventID: o.EventID})
		if err != nil {
			return ch, nil, err
		}
	}
	return ch, res, nil
}

func (r *ShardReport) sort() {
	sort.Slice(r.Changes, func(i, j int) bool {
		a, b := r.Changes[i], r.Changes[j]
		if a.Module != b.Module {
			return a.Module < b.Module
		}
		return semver.Compare(a.Version, b.Version) < 0
	})
}

// Merge adds the shard reports of a run into one.
func Merge(run string, shards ...*ShardReport) *ShardReport {
	r := &ShardReport{Run: run, Counts: make(map[Outcome]int)}
	var end time.Time
	for _, s := range shards {
		if s == nil {
			continue
		}
		r.Versions += s.Versions
		r.Bytes += s.Bytes
		r.Remembered += s.Remembered
		for k, v := range s.Counts {
			r.Counts[k] += v
		}
		for k, v := range s.Skipped {
			if r.Skipped == nil {
				r.Skipped = make(map[string]int)
			}
			r.Skipped[k] += v
		}
		r.Changes = append(r.Changes, s.Changes...)
		r.LogFindings = append(r.LogFindings, s.LogFindings...)
		for _, w := range s.Warnings {
			if !slices.Contains(r.Warnings, w) {
				r.Warnings = append(r.Warnings, w)
			}
		}
		if r.Started.IsZero() || s.Started.Before(r.Started) {
			r.Started = s.Started
		}
		if e := s.Started.Add(time.Duration(s.DurationMS * float64(time.Millisecond))); e.After(end) {
			end = e
		}
	}
	r.sort()
	if !r.Started.IsZero() {
		r.DurationMS = float64(end.Sub(r.Started).Microseconds()) / 1000
	}
	return r
}

// Text is the report for a person: counts by outcome, every version not
// good with its reason, and the duration.
func (r *ShardReport) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "re-verification %s: %d versions in %.1fs", r.Run, r.Versions, r.DurationMS/1000)
	if r.DurationMS > 0 {
		fmt.Fprintf(&b, " (%.0f versions/s, %.1f MB/s of zips)", float64(r.Versions)/(r.DurationMS/1000), float64(r.Bytes)/1e6/(r.DurationMS/1000))
	}
	b.WriteString("\n")
	for _, o := range Outcomes {
		fmt.Fprintf(&b, "  %-18s %d\n", o, r.Counts[o])
	}
	if r.Remembered > 0 {
		fmt.Fprintf(&b, "  (%d unchanged since proven: files hashed again, time-dependent checks run again)\n", r.Remembered)
	}
	for _, f := range r.LogFindings {
		fmt.Fprintf(&b, "SECURITY: checksum log: %s\n", f)
	}
	for _, c := range r.Changes {
		fmt.Fprintf(&b, "%s %s: %s\n", c.Outcome, c.Key(), c.Reason)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	if len(r.Skipped) > 0 {
		var ks []string
		for k, v := range r.Skipped {
			ks = append(ks, fmt.Sprintf("%s (%d versions)", k, v))
		}
		sort.Strings(ks)
		fmt.Fprintf(&b, "not checked for lack of a record: %s\n", strings.Join(ks, ", "))
	}
	return b.String()
}
