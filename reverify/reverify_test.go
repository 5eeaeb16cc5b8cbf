package reverify

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/pipeline"
	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/store/storetest"
)

// fakeChecker fails the versions in fail with their reason, errors on
// those in broken, and passes the rest with a summary.
type fakeChecker struct {
	mu     sync.Mutex
	fail   map[string]string
	broken map[string]bool
	// remembered are passed as proven before.
	remembered map[string]bool
	// checked, when set, is called with the number of versions checked.
	checked func(n int)
	n       int
}

func (c *fakeChecker) Version(ctx context.Context, m module.Version) (*pipeline.Reverified, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n++; c.checked != nil {
		c.checked(c.n)
	}
	if c.broken[m.String()] {
		return nil, errors.New("database unreachable")
	}
	r := &pipeline.Reverified{Module: m.Path, Version: m.Version, Bytes: 10, Remembered: c.remembered[m.String()]}
	if reason, ok := c.fail[m.String()]; ok {
		r.Problems = []pipeline.Problem{{Check: "tag-signature", Reason: reason, Security: true}}
	}
	return r, nil
}

func (c *fakeChecker) Sign(ctx context.Context, rs []*pipeline.Reverified, run string) ([]byte, error) {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.Module + "@" + r.Version + " ")
	}
	return []byte(b.String() + run + "\n"), nil
}

func newStore(t *testing.T, vs ...string) (*store.Dir, []module.Version) {
	t.Helper()
	d, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	var ms []module.Version
	for _, s := range vs {
		path, v, _ := strings.Cut(s, "@")
		m := module.Version{Path: path, Version: v}
		sv := storetest.Version(t, m, map[string]string{"go.mod": "module " + path + "\n", "a.go": "package a\n"})
		if _, err := d.Publish(context.Background(), sv); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	return d, ms
}

func TestRunShardQuarantineRestore(t *testing.T) {
	ctx := context.Background()
	st, vs := newStore(t, "example.com/a@v1.0.0", "example.com/a@v1.1.0", "example.com/b@v0.1.0", "example.com/c@v1.0.0")
	c := &fakeChecker{fail: map[string]string{"example.com/a@v1.1.0": "key revoked"}, broken: map[string]bool{"example.com/c@v1.0.0": true}}
	var changed []string
	var mu sync.Mutex
	o := Options{Run: "r1", EventID: "e1", Concurrency: 3, Changed: func(ch Change) {
		mu.Lock()
		changed = append(changed, string(ch.Outcome)+" "+ch.Key())
		mu.Unlock()
	}}
	rep, err := RunShard(ctx, c, st, vs, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Versions != 4 || rep.Counts[Good] != 2 || rep.Counts[Quarantined] != 1 || rep.Counts[Errored] != 1 || rep.Bytes != 30 {
		t.Fatalf("report %+v", rep)
	}
	if !slices.Equal(changed, []string{"quarantined example.com/a@v1.1.0"}) {
		t.Errorf("changed %v", changed)
	}
	q, _ := st.Quarantined(ctx, vs[1])
	if q == nil || q.Reason != "tag-signature: key revoked" || q.Run != "r1" || q.EventID != "e1" || len(q.Findings) != 1 {
		t.Fatalf("quarantine %+v", q)
	}
	if q, _ := st.Quarantined(ctx, vs[3]); q != nil {
		t.Error("a version that could not be checked was quarantined")
	}
	if got, _ := st.Versions(ctx, "example.com/a"); !slices.Equal(got, []string{"v1.0.0"}) {
		t.Errorf("list %v", got)
	}
	text := rep.Text()
	for _, want := range []string{"4 versions", "quarantined example.com/a@v1.1.0: tag-signature: key revoked", "error example.com/c@v1.0.0: database unreachable"} {
		if !strings.Contains(text, want) {
			t.Errorf("report text lacks %q:\n%s", want, text)
		}
	}

	// Again: still quarantined, nothing announced.
	changed = nil
	rep, _ = RunShard(ctx, c, st, vs[:2], o)
	if rep.Counts[StillQuarantined] != 1 || len(changed) != 0 {
		t.Errorf("second run %+v, changed %v", rep.Counts, changed)
	}
	// Fixed: restored and announced.
	delete(c.fail, "example.com/a@v1.1.0")
	rep, _ = RunShard(ctx, c, st, vs[:2], o)
	if rep.Counts[Restored] != 1 || !slices.Equal(changed, []string{"restored example.com/a@v1.1.0"}) {
		t.Errorf("restore run %+v, changed %v", rep.Counts, changed)
	}
	if got, _ := st.Versions(ctx, "example.com/a"); len(got) != 2 {
		t.Errorf("list after restore %v", got)
	}
}

// TestRunShardCancelled: a run cancelled between versions is an error, not
// a report of the versions it reached; no summary is signed or written.
func TestRunShardCancelled(t *testing.T) {
	st, vs := newStore(t, "example.com/a@v1.0.0", "example.com/a@v1.1.0", "example.com/b@v0.1.0", "example.com/c@v1.0.0")
	for _, conc := range []int{1, 3} {
		ctx, cancel := context.WithCancel(context.Background())
		c := &fakeChecker{checked: func(n int) {
			if n == 2 {
				cancel()
			}
		}}
		rep, err := RunShard(ctx, c, st, vs, Options{Run: "r1", Concurrency: conc})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("concurrency %d: cancelled run = %+v, %v; want context.Canceled", conc, rep, err)
		}
		if c.n == len(vs) && conc == 1 {
			t.Errorf("concurrency 1: all %d versions checked after the cancel", c.n)
		}
		for _, m := range vs {
			files, err := st.OpenVersion(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := files.ReadFile(store.StateReverified, 1<<20, nil); err == nil {
				t.Errorf("concurrency %d: %v got a summary from a cancelled run", conc, m)
			}
			files.Close()
		}
	}
}

func TestPlanAndSplit(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t, "example.com/a@v1.0.0", "example.com/a@v1.1.0", "example.com/b@v0.1.0")
	for _, tc := range []struct {
		scope Scope
		want  int
		err   string
	}{
		{Scope{All: true}, 3, ""},
		{Scope{Module: "example.com/a"}, 2, ""},
		{Scope{Module: "example.com/a", Version: "v1.1.0"}, 1, ""},
		{Scope{Module: "example.com/a", Version: "v1.2.0"}, 0, "is not admitted"},
		{Scope{Module: "example.com/zzz"}, 0, "no admitted versions"},
		{Scope{Since: time.Now().Add(-time.Hour)}, 3, ""},
		{Scope{Since: time.Now().Add(time.Hour)}, 0, ""},
	} {
		vs, err := Plan(ctx, st, tc.scope)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Plan(%+v) = %v, want error %q", tc.scope, err, tc.err)
			}
			continue
		}
		if err != nil || len(vs) != tc.want {
			t.Errorf("Plan(%+v) = %v, %v; want %d versions", tc.scope, vs, err, tc.want)
		}
	}
	all, _ := Plan(ctx, st, Scope{All: true})
	shards := Split(all, 2)
	if len(shards) != 2 || len(shards[0]) != 2 || shards[1][0] != "example.com/b@v0.1.0" {
		t.Errorf("Split = %v", shards)
	}
	back, err := ParseVersions(append(shards[0], shards[1]...))
	if err != nil || !slices.Equal(back, all) {
		t.Errorf("ParseVersions = %v, %v", back, err)
	}
	if _, err := ParseVersions([]string{"example.com/a@1.0"}); err == nil {
		t.Error("ParseVersions accepted a non-canonical version")
	}
}

func TestParseScope(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		all           bool
		target, since string
		ok            bool
	}{
		{true, "", "", true},
		{false, "corp.example/x", "", true},
		{false, "corp.example/x@v1.2.3", "", true},
		{false, "corp.example/x@v1.2", "", false},
		{false, "corp.example/x@v2.0.0", "", false},
		{false, "-bad", "", false},
		{false, "", "24h", true},
		{false, "", "2026-01-01T00:00:00Z", true},
		{false, "", "yesterday", false},
		{false, "", "", false},
		{true, "corp.example/x", "", false},
	} {
		_, err := ParseScope(tc.all, tc.target, tc.since, now)
		if (err == nil) != tc.ok {
			t.Errorf("ParseScope(%v, %q, %q) = %v, want ok=%v", tc.all, tc.target, tc.since, err, tc.ok)
		}
	}
	s, _ := ParseScope(false, "", "24h", now)
	if !s.Since.Equal(now.Add(-24 * time.Hour)) {
		t.Errorf("since %v", s.Since)
	}
}

func TestMerge(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	a := &ShardReport{Versions: 2, Counts: map[Outcome]int{Good: 2}, Bytes: 5, Started: t0, DurationMS: 1000, Warnings: []string{"key k expires"}}
	b := &ShardReport{Versions: 1, Counts: map[Outcome]int{Quarantined: 1}, Bytes: 7, Started: t0.Add(500 * time.Millisecond), DurationMS: 1500,
		Changes: []Change{{Module: "m", Version: "v1.0.0", Outcome: Quarantined, Reason: "r"}}, Warnings: []string{"key k expires"}}
	r := Merge("run", a, nil, b)
	if r.Versions != 3 || r.Counts[Good] != 2 || r.Counts[Quarantined] != 1 || r.Bytes != 12 || len(r.Changes) != 1 || r.DurationMS != 2000 {
		t.Errorf("Merge = %+v", r)
	}
	// Every shard of a run sees the same keys: each warning once.
	if len(r.Warnings) != 1 || !strings.Contains(r.Text(), "\nwarning: key k expires\n") {
		t.Errorf("warnings %q in\n%s", r.Warnings, r.Text())
	}
}

// TestRunShardBatches: versions that passed are signed in batches of at
// most BatchSize, each version served the batch that names it, and the
// report counts the versions remembered.
func TestRunShardBatches(t *testing.T) {
	ctx := context.Background()
	var names []string
	for i := range 7 {
		names = append(names, "example.com/batch@v1.0."+string(rune('0'+i)))
	}
	st, vs := newStore(t, names...)
	c := &fakeChecker{fail: map[string]string{names[3]: "key revoked"}, remembered: map[string]bool{names[0]: true, names[5]: true}}
	rep, err := RunShard(ctx, c, st, vs, Options{Run: "r", Concurrency: 2, BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts[Good] != 6 || rep.Counts[Quarantined] != 1 || rep.Remembered != 2 || !strings.Contains(rep.Text(), "(2 unchanged since proven") {
		t.Fatalf("report %+v\n%s", rep.Counts, rep.Text())
	}
	if m := Merge("r", rep, rep); m.Remembered != 4 {
		t.Errorf("merged %d remembered", m.Remembered)
	}
	batches := map[string]int{}
	for i, m := range vs {
		f, err := st.OpenFile(ctx, m, store.StateReverified)
		if i == 3 {
			if err == nil {
				f.Close()
				t.Errorf("%s failed and got a new summary", m)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		data := make([]byte, 4096)
		n, _ := f.Read(data)
		f.Close()
		batch := string(data[:n])
		if !strings.Contains(batch, m.String()+" ") {
			t.Errorf("%s is served a batch that does not name it: %q", m, batch)
		}
		batches[batch]++
	}
	if len(batches) != 3 {
		t.Errorf("%d batches for 6 versions in twos: %v", len(batches), batches)
	}
	for b, n := range batches {
		if strings.Count(b, "@") != n || n > 2 {
			t.Errorf("batch %q served to %d versions", b, n)
		}
	}
}
