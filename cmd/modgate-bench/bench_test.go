package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/verifiers/depsum"
)

func TestPercentile(t *testing.T) {
	v := []float64{15, 20, 35, 40, 50}
	for _, c := range []struct{ p, want float64 }{
		{0, 15}, {5, 15}, {30, 20}, {40, 20}, {50, 35}, {95, 50}, {100, 50},
	} {
		if got := percentile(v, c.p); got != c.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", v, c.p, got, c.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v", got)
	}
	// Twenty values 1..20, shuffled: p50 is the 10th, p95 the 19th.
	var w []float64
	for i := 20; i >= 1; i-- {
		w = append(w, float64(i))
	}
	if p50, p95 := percentile(w, 50), percentile(w, 95); p50 != 10 || p95 != 19 {
		t.Errorf("p50, p95 of 1..20 = %v, %v; want 10, 19", p50, p95)
	}
	if !slices.Equal(w[:2], []float64{20, 19}) {
		t.Error("percentile sorted its input")
	}
	s := summarize("x", []float64{1, 2, 3, 10})
	if s.N != 4 || s.Total != 16 || s.Mean != 4 || s.Max != 10 || s.P50 != 2 || s.P95 != 10 {
		t.Errorf("summarize = %+v", s)
	}
}

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (modgate (x) y) S 1 2 3 0 -1 4194304 97 0 0 0 150 25 7 3 20 0 1 0 851262 3133440 358"
	got, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	want := cpuTimes{Self: 1750 * time.Millisecond, Children: 100 * time.Millisecond}
	if got != want {
		t.Errorf("parseStat = %+v, want %+v", got, want)
	}
	if _, err := parseStat("4242 (x) S 1 2"); err == nil {
		t.Error("short line accepted")
	}
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Skipf("no /proc: %v", err)
	}
}

func TestPickDisjoint(t *testing.T) {
	cd := func(path string, deps ...string) candidate {
		return candidate{Module: path, Version: "v1.0.0", SumPaths: deps}
	}
	cands := []candidate{
		cd("a.example/x", "b.example/y", "z.example"),
		cd("b.example/y"),                // a.example/x depends on it: its lookups would go to modgate's log
		cd("c.example/z", "c.example/z"), // names an older version of itself in go.sum
		cd("rejected.example"),           // refused by accept: blocks nothing
		cd("e.example/w", "f.example", "rejected.example"),
		cd("f.example"),                          // e.example/w depends on it
		cd("f.example/v"),                        // e.example/w's dependency f.example is not below f.example/v
		cd("y.example/u", "a.example/x/sub/pkg"), // depends below a chosen path
		cd("a.example/x/sub", "q.example"),       // below a chosen path, and nothing depends on it
		cd("h.example"),
	}
	var asked []string
	accept := func(c candidate) bool {
		asked = append(asked, c.Module)
		return c.Module != "rejected.example"
	}
	var got []string
	for _, c := range pickDisjoint(cands, 4, accept, nil) {
		got = append(got, c.Module)
	}
	want := []string{"a.example/x", "e.example/w", "f.example/v", "a.example/x/sub"}
	if !slices.Equal(got, want) {
		t.Errorf("picked %q, want %q", got, want)
	}
	wantAsked := []string{"a.example/x", "rejected.example", "e.example/w", "f.example/v", "a.example/x/sub"}
	if !slices.Equal(asked, wantAsked) {
		t.Errorf("accept asked about %q, want %q (conflicts are settled before the costly check; stop at n)", asked, wantAsked)
	}

	// Adding to an earlier choice: its go.sum paths still exclude.
	got = nil
	for _, c := range pickDisjoint([]candidate{cd("z.example"), cd("k.example", "f.example/v/x"), cd("m.example")}, 3, accept, []candidate{cands[0], cands[6]}) {
		got = append(got, c.Module)
	}
	if want := []string{"a.example/x", "f.example/v", "m.example"}; !slices.Equal(got, want) {
		t.Errorf("picked %q, want %q", got, want)
	}
}

func TestOrderByConflicts(t *testing.T) {
	cd := func(path, order string, deps ...string) candidate {
		return candidate{Module: path, Version: "v1.0.0", SumPaths: deps, order: order}
	}
	cands := []candidate{
		cd("popular.example", "1"),                               // 3 others depend on it
		cd("a.example", "2", "popular.example"),                  // conflicts with popular.example
		cd("b.example", "3", "popular.example/sub"),              // likewise
		cd("c.example", "4", "popular.example", "a.example/sub"), // with both
		cd("free.example", "9", "elsewhere.example"),
		cd("free2.example", "8"),
	}
	orderByConflicts(cands)
	var got []string
	for _, c := range cands {
		got = append(got, fmt.Sprintf("%s:%d", c.Module, c.conflicts))
	}
	want := []string{"free2.example:0", "free.example:0", "b.example:1", "a.example:2", "c.example:2", "popular.example:3"}
	if !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
}

// TestScanModCache reads the candidates of the real module cache (the
// modules modgate itself requires are there).
func TestScanModCache(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skip(err)
	}
	cands, err := scanModCache(strings.TrimSpace(string(out)), 1, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(cands) == 0 {
		t.Skip("no module with a go.sum in the module cache")
	}
	for _, c := range cands {
		if c.SumLines == 0 || len(c.SumPaths) == 0 || !strings.HasPrefix(c.ZipHash, "h1:") || len(c.GoMod) == 0 {
			t.Errorf("%s@%s: incomplete candidate %+v", c.Module, c.Version, c)
		}
	}
	if !slices.IsSortedFunc(cands, func(a, b candidate) int { return strings.Compare(a.order, b.order) }) {
		t.Error("candidates not in their fixed order")
	}
}

// TestBenchEndToEnd runs the whole harness on a corpus of two module
// versions (one more for the warm-up): the modgate binary built from this
// module, modgate serve with a modgate serve --workers-only beside it (two
// worker processes), and the shell chain when its tools are built. About
// 30-45 s; needs git, gpg, ssh-keygen and the public checksum database;
// skipped with -short.
func TestBenchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds modgate and runs modgate serve twice; skipped with -short")
	}
	for _, tool := range []string{"git", "gpg", "ssh-keygen", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	env, err := goEnv(context.Background(), "go", "GOPROXY", "GOSUMDB")
	if err != nil {
		t.Skip(err)
	}
	if env["GOSUMDB"] == "off" {
		t.Skip("GOSUMDB=off")
	}
	dctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	_, err = depsum.Discover(dctx, env["GOPROXY"], env["GOSUMDB"], &http.Client{Timeout: 10 * time.Second})
	cancel()
	if err != nil {
		t.Skipf("public checksum database unreachable: %v", err)
	}

	args := []string{"-json", "-n", "2", "-warmup", "1", "-procs", "2", "-workers", "1", "-corpus", filepath.Join(t.TempDir(), "corpus")}
	tools := os.Getenv("MODGATE_TOOLS")
	if tools == "" {
		if cache, err := os.UserCacheDir(); err == nil {
			tools = filepath.Join(cache, "modgate-tools", "cosign-v2.6.5-syft-v1.57.0", "bin")
		}
	}
	if _, err := os.Stat(filepath.Join(tools, "syft")); err == nil {
		args = append(args, "-tools", tools)
	} else {
		t.Logf("no syft/cosign CLIs in %q (.ci/tools.sh builds them): the chain is skipped", tools)
		args = append(args, "-skip-chain")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("modgate-bench: %v\n%s", err, stderr.String())
	}
	t.Logf("progress:\n%s", stderr.String())
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("-json output: %v\n%s", err, stdout.String())
	}
	if rep.Corpus.Measured != 2 || len(rep.Service) != 1 {
		t.Fatalf("report: %d measured, %d service runs; want 2, 1", rep.Corpus.Measured, len(rep.Service))
	}
	for _, s := range rep.Service {
		if s.N != 2 || s.Rate <= 0 || len(s.PerProcess) != s.Procs {
			t.Errorf("service run %+v", s)
		}
		if s.Procs != 2 || len(s.PerProcess) != 2 || s.PerProcess[0]+s.PerProcess[1] != 2 {
			t.Errorf("%d processes: admissions per process %v, want 2 in all", s.Procs, s.PerProcess)
		}
		var names []string
		for _, st := range s.Stages {
			names = append(names, st.Name)
			if st.N != 2 {
				t.Errorf("stage %s: %d durations, want 2", st.Name, st.N)
			}
		}
		for _, want := range []string{"fetch", "tag-signature", "dependencies", "sbom", "policy", "sign", "publish", "admission", "end to end"} {
			if !slices.Contains(names, want) {
				t.Errorf("no %q in the stages %q", want, names)
			}
		}
		if s.HashesAsPublic != 2 {
			t.Errorf("%d of 2 zips hash as sum.golang.org records them", s.HashesAsPublic)
		}
	}
	if rep.Chain != nil && (rep.Chain.N != 2 || rep.Chain.Rate <= 0 || len(rep.Ratios) != 1) {
		t.Errorf("chain %+v, ratios %v", rep.Chain, rep.Ratios)
	}
}
