// Command modgate-bench is the whole-pipeline throughput benchmark of
// modgate (`make bench`): a corpus of real module versions from the local
// module cache, each a git repository with a signed annotated tag, admitted
// through the real `modgate serve` (embedded NATS JetStream, workers, the
// checksum database, SBOMs, policies, cosign signatures, the store) with 1
// and then 2 worker processes, and, in the same run, through the shell
// chain teams use today (git verify-tag, go mod verify, the syft CLI, cosign
// sign-blob). It reports admissions per second, per-stage p50/p95 latency,
// the chain's modules per second and the ratio.
//
// Usage (from the modgate repository):
//
//	go run ./cmd/modgate-bench [-n 30] [-procs 1,2] [-workers N] [-skip-chain] [-json]
//
// The corpus is built once (under a minute) and cached under the user
// cache directory (modgate-bench/corpus-v<version>). Every service
// run uses a fresh data directory and fresh keys' state; every admission
// must end "admitted", or the benchmark fails with the reasons.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/modgate/modgate/config"
)

type options struct {
	n, warmup, workers, chainJobs int
	reverifyRuns                  int
	procs                         []int
	skipChain, asJSON, keep       bool
	cpuProfiles                   string
	rebuild, verbose, download    bool
	modgate, corpusDir, tools     string
	minZip, maxZip                int64
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "modgate-bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("modgate-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.n, "n", defaultN, "module versions timed (the corpus holds n + warmup)")
	fs.IntVar(&o.warmup, "warmup", defaultWarmup, "module versions each service run admits, all at once, before the clock starts, so that every worker process has paid its one-time start-up costs (the first SBOM in a process is slow); at least processes × workers")
	fs.IntVar(&o.workers, "workers", 0, "workers per modgate process (nats.workers; 0: modgate's default, twice the CPU count)")
	procs := fs.String("procs", "1,2", "comma-separated numbers of worker processes to measure: 1 is modgate serve alone, each more is a modgate serve --workers-only")
	fs.BoolVar(&o.skipChain, "skip-chain", false, "do not run the shell chain")
	fs.IntVar(&o.reverifyRuns, "reverify-runs", 7, "times the first service run re-verifies everything it admitted (modgate reverify --all), against raw SHA-256 of the same files; 0 skips it")
	fs.StringVar(&o.cpuProfiles, "cpuprofile", "", "write a CPU profile of each modgate process to `dir`/<run>-<process>.prof (modgate serve --cpuprofile)")
	fs.IntVar(&o.chainJobs, "chain-jobs", 1, "modules the shell chain works on at once (1: one after the other, as a CI script)")
	fs.BoolVar(&o.asJSON, "json", false, "print the results as JSON on stdout (progress still goes to stderr)")
	fs.BoolVar(&o.keep, "keep", false, "keep the scratch directory (configurations, data, logs, SBOMs)")
	fs.BoolVar(&o.rebuild, "rebuild-corpus", false, "rebuild the cached corpus")
	fs.BoolVar(&o.download, "corpus-download", false, "when building the corpus, let 'go mod verify' download the go.mod files a module's graph needs into the module cache (through GOPROXY) before the offline check, so that more modules qualify (for large -n)")
	fs.BoolVar(&o.verbose, "v", false, "log every corpus candidate skipped, and why")
	fs.StringVar(&o.modgate, "modgate", "", "modgate `binary` to run (default: go build ./cmd/modgate of this module into the scratch directory)")
	fs.StringVar(&o.corpusDir, "corpus", "", "corpus `dir` (default: <user cache>/modgate-bench/corpus-v<version>, or corpus-v<version>-n<size> when larger than the default); a cached corpus with at least n + warmup entries is reused, a smaller one rebuilt")
	fs.StringVar(&o.tools, "tools", os.Getenv("MODGATE_TOOLS"), "`dir` holding the syft and cosign CLIs (default: $MODGATE_TOOLS, else what .ci/tools.sh prints)")
	fs.Int64Var(&o.minZip, "min-zip", 20<<10, "smallest module zip to take, bytes")
	fs.Int64Var(&o.maxZip, "max-zip", 1536<<10, "largest module zip to take, bytes")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, f := range strings.Split(*procs, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p < 1 || p > 16 {
			return nil, fmt.Errorf("-procs %q: want numbers from 1 to 16", *procs)
		}
		o.procs = append(o.procs, p)
	}
	if o.n < 1 || o.warmup < 0 || o.workers < 0 {
		return nil, errors.New("-n must be positive, -warmup and -workers not negative")
	}
	return o, nil
}

// report is the result of a benchmark run (-json prints it).
type report struct {
	Started time.Time        `json:"started"`
	Machine machine          `json:"machine"`
	Corpus  corpusInfo       `json:"corpus"`
	Service []*serviceResult `json:"service"`
	Chain   *chainResult     `json:"chain,omitempty"`
	// Ratios are service admissions/s ÷ chain modules/s, per service run.
	Ratios []float64 `json:"ratios,omitempty"`
	Target float64   `json:"target_ratio"`
}

type machine struct {
	GOOS    string `json:"goos"`
	GOARCH  string `json:"goarch"`
	CPUs    int    `json:"cpus"`
	Go      string `json:"go"`
	Modgate string `json:"modgate"`
}

type corpusInfo struct {
	Dir        string   `json:"dir"`
	Measured   int      `json:"measured"`
	Warmup     int      `json:"warmup"`
	SSH        int      `json:"ssh_signed"`
	OpenPGP    int      `json:"openpgp_signed"`
	SumLines   int      `json:"gosum_lines"`
	SumModules int      `json:"gosum_module_versions"`
	ZipBytes   int64    `json:"zip_bytes"`
	Files      int      `json:"files"`
	Modules    []string `json:"modules"`
}

const targetRatio = 20

const defaultN, defaultWarmup = 30, 4

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (retErr error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	t0 := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%7.1fs  %s\n", time.Since(t0).Seconds(), fmt.Sprintf(format, args...))
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return err
	}
	gitbin, err := exec.LookPath("git")
	if err != nil {
		return err
	}
	env, err := goEnv(ctx, gobin, "GOMODCACHE", "GOPROXY", "GOSUMDB", "GOMOD", "GOVERSION")
	if err != nil {
		return err
	}
	root := ""
	if env["GOMOD"] != "" && env["GOMOD"] != os.DevNull {
		root = filepath.Dir(env["GOMOD"])
	}

	scratch, err := os.MkdirTemp("", "modgate-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if o.keep || retErr != nil {
			logf("scratch directory kept: %s", scratch)
			return
		}
		removeAll(scratch)
	}()

	// The modgate binary.
	bin := o.modgate
	if bin == "" {
		if root == "" {
			return errors.New("not in the modgate module: run from the repository or pass -modgate")
		}
		bin = filepath.Join(scratch, "modgate")
		logf("building modgate (go build -o %s ./cmd/modgate)", bin)
		cmd := exec.CommandContext(ctx, gobin, "build", "-o", bin, "./cmd/modgate")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/modgate: %v\n%s", err, out)
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return err
	}

	// The chain's tools.
	var tools chainTools
	if !o.skipChain {
		dir := o.tools
		if dir == "" {
			if root == "" {
				return errors.New("no syft/cosign: set MODGATE_TOOLS or -tools, or run from the repository (.ci/tools.sh)")
			}
			logf("chain tools: .ci/tools.sh (builds syft and cosign once, into the user cache)")
			cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, ".ci", "tools.sh"))
			cmd.Stderr = stderr
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf(".ci/tools.sh: %v", err)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			dir = strings.TrimSpace(lines[len(lines)-1])
		}
		tools = chainTools{git: gitbin, gobin: gobin, syft: filepath.Join(dir, "syft"), cosign: filepath.Join(dir, "cosign")}
		for _, t := range []string{tools.syft, tools.cosign} {
			if _, err := os.Stat(t); err != nil {
				return fmt.Errorf("chain tool: %w", err)
			}
		}
	}

	// The corpus.
	total := o.n + o.warmup
	cdir := o.corpusDir
	if cdir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return err
		}
		// The default corpus (and any smaller) lives in one place, so that
		// runs compare; a larger one is built beside it, not over it.
		name := fmt.Sprintf("corpus-v%d", corpusVersion)
		if total > defaultN+defaultWarmup {
			name += fmt.Sprintf("-n%d", total)
		}
		cdir = filepath.Join(cache, "modgate-bench", name)
	}
	if cdir, err = filepath.Abs(cdir); err != nil {
		return err
	}
	corpus, err := loadOrBuildCorpus(ctx, corpusOptions{N: total, Dir: cdir, ModCache: env["GOMODCACHE"],
		MinZip: o.minZip, MaxZip: o.maxZip, GOPROXY: env["GOPROXY"], GOSUMDB: env["GOSUMDB"], Rebuild: o.rebuild,
		Logf: logf, GoBinary: gobin, GitBinary: gitbin, Download: o.download, Verbose: o.verbose})
	if err != nil {
		return err
	}

	b := &bench{bin: bin, dir: scratch, corpus: corpus, measured: corpus.Entries[:o.n], warm: corpus.Entries[o.n:],
		goproxy: env["GOPROXY"], gosumdb: env["GOSUMDB"], logf: logf, cpuProfiles: o.cpuProfiles, reverifyRuns: o.reverifyRuns}
	if err := b.makeServiceKeys(ctx); err != nil {
		return err
	}

	rep := &report{Started: t0.UTC(), Target: targetRatio,
		Machine: machine{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(), Go: env["GOVERSION"], Modgate: bin},
		Corpus:  describeCorpus(corpus, b.measured, len(b.warm))}
	for _, p := range o.procs {
		logf("service: %d worker process(es), %s each: %d admissions", p, workersDesc(o.workers), o.n)
		res, err := b.runService(ctx, p, o.workers)
		if err != nil {
			return fmt.Errorf("service with %d process(es): %w", p, err)
		}
		logf("service: %d process(es): %d admitted in %.2fs: %.2f admissions/s", p, res.N, res.WallSeconds, res.Rate)
		rep.Service = append(rep.Service, res)
	}
	if !o.skipChain {
		logf("shell chain: %d modules, %d at a time", o.n, max(1, o.chainJobs))
		res, err := b.runChain(ctx, tools, o.chainJobs)
		if err != nil {
			return err
		}
		logf("shell chain: %d modules in %.2fs: %.3f modules/s", res.N, res.WallSeconds, res.Rate)
		rep.Chain = res
		for _, s := range rep.Service {
			rep.Ratios = append(rep.Ratios, s.Rate/res.Rate)
		}
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printReport(stdout, rep, o.workers)
	return nil
}

func workersDesc(w int) string {
	if w == 0 {
		return fmt.Sprintf("%d workers (default)", config.DefaultWorkers())
	}
	return fmt.Sprintf("%d workers", w)
}

// goEnv reads variables from `go env`.
func goEnv(ctx context.Context, gobin string, names ...string) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, gobin, append([]string{"env"}, names...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go env: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != len(names) {
		return nil, fmt.Errorf("go env: %d lines for %d variables", len(lines), len(names))
	}
	m := map[string]string{}
	for i, n := range names {
		m[n] = lines[i]
	}
	return m, nil
}

func describeCorpus(c *Corpus, measured []Entry, warm int) corpusInfo {
	ci := corpusInfo{Dir: c.Dir, Measured: len(measured), Warmup: warm}
	for _, e := range measured {
		if e.Signer == "ssh" {
			ci.SSH++
		} else {
			ci.OpenPGP++
		}
		ci.SumLines += e.SumLines
		ci.SumModules += e.SumModules
		ci.ZipBytes += e.ZipBytes
		ci.Files += e.Files
		ci.Modules = append(ci.Modules, e.Module+"@"+e.Version)
	}
	return ci
}

// printReport prints the results as tables.
func printReport(w io.Writer, r *report, workers int) {
	c := r.Corpus
	fmt.Fprintf(w, "\nmodgate throughput benchmark, %s\n", r.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %s/%s, %d CPUs, %s\n", r.Machine.GOOS, r.Machine.GOARCH, r.Machine.CPUs, r.Machine.Go)
	fmt.Fprintf(w, "corpus:  %d module versions from the module cache (%d ssh-signed, %d gpg-signed tags), %d files, %.1f MB of zips,\n",
		c.Measured, c.SSH, c.OpenPGP, c.Files, float64(c.ZipBytes)/(1<<20))
	fmt.Fprintf(w, "         %d go.sum lines (%d module versions to look up); each service run first admits %d more (warm-up)\n\n",
		c.SumLines, c.SumModules, c.Warmup)

	fmt.Fprintf(w, "%-48s %9s %22s %9s\n", "throughput", "wall", "rate", "vs chain")
	for i, s := range r.Service {
		ratio := ""
		if i < len(r.Ratios) {
			ratio = fmt.Sprintf("%.1f×", r.Ratios[i])
		}
		name := fmt.Sprintf("modgate serve, %d process%s × %s", s.Procs, plural(s.Procs, "es"), workersDesc(s.Workers))
		fmt.Fprintf(w, "%-48s %8.2fs %13.2f admits/s %9s\n", name, s.WallSeconds, s.Rate, ratio)
	}
	if r.Chain != nil {
		name := "shell chain, one module after the other"
		if r.Chain.Jobs > 1 {
			name = fmt.Sprintf("shell chain, %d modules at a time", r.Chain.Jobs)
		}
		fmt.Fprintf(w, "%-48s %8.2fs %12.3f modules/s %9s\n", name, r.Chain.WallSeconds, r.Chain.Rate, "1.0×")
		best := 0.0
		for _, x := range r.Ratios {
			best = max(best, x)
		}
		verdict := "met"
		if best < r.Target {
			verdict = "NOT met"
		}
		fmt.Fprintf(w, "target: ≥ %.0f× the chain's throughput: %s (best %.1f×)\n", r.Target, verdict, best)
	}

	if len(r.Service) > 0 {
		fmt.Fprintf(w, "\nmodgate latency per stage, ms (from the verdicts)")
		fmt.Fprintf(w, "\n%-16s", "")
		for _, s := range r.Service {
			fmt.Fprintf(w, " %19s", fmt.Sprintf("%d process%s", s.Procs, plural(s.Procs, "es")))
		}
		fmt.Fprintf(w, "\n%-16s", "stage")
		for range r.Service {
			fmt.Fprintf(w, " %9s %9s", "p50", "p95")
		}
		fmt.Fprintln(w)
		for i, st := range r.Service[0].Stages {
			fmt.Fprintf(w, "%-16s", st.Name)
			for _, s := range r.Service {
				if i < len(s.Stages) {
					fmt.Fprintf(w, " %9.1f %9.1f", s.Stages[i].P50, s.Stages[i].P95)
				}
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "(admission: one pipeline run; queue wait: enqueue to pipeline start, all %d enqueued at once; end to end: enqueue to verdict)\n", c.Measured)
		for _, s := range r.Service {
			fmt.Fprintf(w, "%d process%s: admissions per process %s (warm-up %s); zips hashing as sum.golang.org records them: %d of %d;\n"+
				"    %d other admissions ended meanwhile (public dependencies modgate serve enqueued)\n",
				s.Procs, plural(s.Procs, "es"), joinInts(s.PerProcess), joinInts(s.WarmedUp), s.HashesAsPublic, s.N, s.OtherAdmissions)
		}
	}
	if len(r.Service) > 0 {
		fmt.Fprintf(w, "\nCPU time per module version (user + system, with child processes)\n")
		for _, s := range r.Service {
			fmt.Fprintf(w, "  modgate, %d process%s: %7.1f ms (modgate processes %.1f ms, their git commands %.1f ms)\n", s.Procs, plural(s.Procs, "es"),
				s.CPUSelfMS+s.CPUChildrenMS, s.CPUSelfMS, s.CPUChildrenMS)
		}
		if r.Chain != nil {
			fmt.Fprintf(w, "  shell chain:         %7.1f ms", r.Chain.CPUMS)
			var parts []string
			for i, c := range r.Chain.StepCPUMS {
				parts = append(parts, fmt.Sprintf("%s %.1f", chainSteps[i], c))
			}
			fmt.Fprintf(w, " (%s)\n", strings.Join(parts, ", "))
		}
	}
	for _, s := range r.Service {
		if rv := s.Reverify; rv != nil {
			fmt.Fprintf(w, "\nre-verification (modgate reverify --all through modgate serve, %d process%s) of the %d versions it admitted (%.1f MB of zips,\n"+
				"with the public dependencies it admitted), against raw SHA-256 of the same zips and of the %d files it hashes, measured before each run\n",
				s.Procs, plural(s.Procs, "es"), rv.Versions, float64(rv.ZipBytes)/1e6, rv.Files)
			fmt.Fprintf(w, "%-8s %10s %12s %16s %16s\n", "run", "ms", "versions/s", "of raw zips", "of raw files")
			for i, run := range rv.Runs {
				name := fmt.Sprint(i + 1)
				if i == 0 {
					name += " (cold)"
				}
				fmt.Fprintf(w, "%-8s %10.0f %12.0f %15.0f%% %15.0f%%\n", name, run.DurationMS, run.VersionsPerSecond, run.OfRawZips, run.OfRawFiles)
			}
			if len(rv.Runs) > 1 {
				var rate, zips, files []float64
				for _, run := range rv.Runs[1:] {
					rate, zips, files = append(rate, run.VersionsPerSecond), append(zips, run.OfRawZips), append(files, run.OfRawFiles)
				}
				fmt.Fprintf(w, "%-8s %10s %12.0f %15.0f%% %15.0f%%\n", "median", "(warm)", percentile(rate, 50), percentile(zips, 50), percentile(files, 50))
			}
		}
	}
	var loads []string
	noisy := false
	for _, s := range r.Service {
		loads = append(loads, fmt.Sprintf("modgate %dp %.2f", s.Procs, s.OtherCores+s.Steal))
		noisy = noisy || s.OtherCores+s.Steal > 0.2
	}
	if r.Chain != nil {
		loads = append(loads, fmt.Sprintf("chain %.2f", r.Chain.OtherCores+r.Chain.Steal))
		noisy = noisy || r.Chain.OtherCores+r.Chain.Steal > 0.2
	}
	fmt.Fprintf(w, "\nother work on the machine while measuring, in cores busy on average (of %d): %s\n", r.Machine.CPUs, strings.Join(loads, ", "))
	if noisy {
		fmt.Fprintln(w, "WARNING: the machine was busy with other work: rates and ratios are noisy; the CPU times above are the steadier comparison")
	}
	if r.Chain != nil {
		fmt.Fprintf(w, "\nshell chain per step, ms\n%-18s %9s %9s %9s %7s\n", "step", "p50", "p95", "mean", "share")
		var total float64
		for _, st := range r.Chain.Steps[:len(r.Chain.Steps)-1] {
			total += st.Total
		}
		for _, st := range r.Chain.Steps {
			share := ""
			if st.Name != "module" && total > 0 {
				share = fmt.Sprintf("%.0f%%", 100*st.Total/total)
			}
			fmt.Fprintf(w, "%-18s %9.1f %9.1f %9.1f %7s\n", st.Name, st.P50, st.P95, st.Mean, share)
		}
	}
	fmt.Fprintln(w)
}

func joinInts(v []int) string {
	var s []string
	for _, x := range v {
		s = append(s, strconv.Itoa(x))
	}
	return strings.Join(s, "/")
}

func plural(n int, s string) string {
	if n == 1 {
		return ""
	}
	return s
}
