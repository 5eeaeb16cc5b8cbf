package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/queue"
)

// bench is one benchmark run: the modgate binary, the corpus, the keys and
// a scratch directory.
type bench struct {
	bin      string // the modgate binary
	dir      string // scratch directory of this run
	corpus   *Corpus
	measured []Entry // the entries timed
	warm     []Entry // admitted before the clock starts
	goproxy  string
	gosumdb  string
	logf     func(format string, args ...any)
	// cpuProfiles, when set, is the directory of each process's CPU profile.
	cpuProfiles string
	// reverifyRuns is how many times the first service run re-verifies
	// everything it admitted (reverifyPhase); 0 skips it.
	reverifyRuns int

	// Keys made with `modgate keys generate`, shared by the service runs and
	// the shell chain (the cosign key signs in both).
	sumdbKey, cosignKey, cosignPassword string
}

// makeServiceKeys generates the checksum database key and the cosign key
// pair with modgate itself. The cosign password is random and only ever
// written to a 0600 file and passed in the chain's environment.
func (b *bench) makeServiceKeys(ctx context.Context) error {
	keys := filepath.Join(b.dir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return err
	}
	b.sumdbKey = filepath.Join(keys, "sumdb.key")
	b.cosignKey = filepath.Join(keys, "cosign.key")
	b.cosignPassword = filepath.Join(keys, "cosign.password")
	var pw [24]byte
	rand.Read(pw[:])
	if err := os.WriteFile(b.cosignPassword, []byte(base64.RawURLEncoding.EncodeToString(pw[:])), 0o600); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"keys", "generate", "--name", "sum.bench.modgate.example", "--out", b.sumdbKey},
		{"keys", "generate", "--cosign-out", b.cosignKey, "--password-file", b.cosignPassword},
	} {
		cmd := exec.CommandContext(ctx, b.bin, args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("modgate %s: %v\n%s", strings.Join(args[:2], " "), err, out)
		}
	}
	return nil
}

// verdict is the part of modgate's verdict JSON (pipeline.Verdict, as
// `modgate admit --json` prints it) the benchmark reads.
type verdict struct {
	Result   string `json:"result"`
	Module   string `json:"module"`
	Version  string `json:"version"`
	Repo     string `json:"repo"`
	Tag      string `json:"tag"`
	Problems []struct {
		Check  string `json:"check"`
		Reason string `json:"reason"`
	} `json:"problems"`
	Stages []struct {
		Name       string  `json:"name"`
		Status     string  `json:"status"`
		DurationMS float64 `json:"duration_ms"`
	} `json:"stages"`
	Hashes *struct {
		Zip string `json:"zip"`
	} `json:"hashes"`
	Started    time.Time `json:"started"`
	DurationMS float64   `json:"duration_ms"`
}

// job is one timed admission.
type job struct {
	Entry    Entry
	EventID  string
	Enqueued time.Time
	Done     time.Time
	Record   queue.Record
	Verdict  verdict
	Err      error
}

// serviceResult is what one service run measured.
type serviceResult struct {
	Procs   int `json:"processes"`
	Workers int `json:"workers_per_process"`
	N       int `json:"admissions"`
	// Wall is from the first enqueue to the last verdict.
	WallSeconds float64 `json:"wall_seconds"`
	Rate        float64 `json:"admissions_per_second"`
	// Stages: per pipeline stage, then "admission" (the pipeline's own
	// duration), "queue wait" (enqueue to pipeline start) and "end to end"
	// (enqueue to verdict received).
	Stages []summary `json:"stages"`
	// HashesAsPublic counts admitted zips whose h1: equals the one
	// sum.golang.org records for the same module version.
	HashesAsPublic int `json:"zip_hashes_equal_to_public"`
	Warmup         int `json:"warmup_admissions"`
	// PerProcess counts the timed admissions each process ran, and
	// WarmedUp the warm-up admissions (from the processes' logs).
	PerProcess []int `json:"admissions_per_process"`
	WarmedUp   []int `json:"warmup_per_process"`
	// OtherAdmissions counts the admissions that ended in the timed window
	// and were not the benchmark's: modgate serve enqueues the public
	// dependencies of every version it admits (see README, Public modules),
	// and the workers run them too.
	OtherAdmissions int `json:"other_admissions_in_window"`
	// CPU time per admission, from /proc while the timed admissions ran:
	// the modgate processes themselves (pipeline, NATS, HTTP), and the git
	// commands they ran.
	CPUSelfMS     float64 `json:"cpu_ms_per_admission_modgate"`
	CPUChildrenMS float64 `json:"cpu_ms_per_admission_git"`
	// OtherCores is the CPU other work on the machine used meanwhile, in
	// cores on average; Steal the hypervisor's steal time, in cores.
	OtherCores float64 `json:"other_load_cores"`
	Steal      float64 `json:"steal_cores"`
	// Reverify is the re-verification of what this run admitted (the
	// first service run only; -reverify-runs).
	Reverify *reverifyResult `json:"reverify,omitempty"`
	Dir      string          `json:"-"`
}

// runService starts modgate serve (and procs-1 workers-only processes) on a
// fresh data directory, admits the warm-up entries, then enqueues every
// measured entry at once and waits for every verdict.
func (b *bench) runService(ctx context.Context, procs, workers int) (*serviceResult, error) {
	dir := filepath.Join(b.dir, fmt.Sprintf("service-%dp", procs))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	natsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, "modgate.yaml")
	if err := b.writeConfig(cfgFile, dir, httpPort, natsPort, workers); err != nil {
		return nil, err
	}
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)

	var ps []*proc
	defer func() {
		for i := len(ps) - 1; i >= 0; i-- {
			ps[i].stop(45 * time.Second)
		}
	}()
	t0 := time.Now()
	serve, err := b.start(dir, "serve-1", "serve", "--config", cfgFile)
	if err != nil {
		return nil, err
	}
	ps = append(ps, serve)
	if err := waitReady(ctx, base, serve, 2*time.Minute); err != nil {
		return nil, err
	}
	for i := 2; i <= procs; i++ {
		w, err := b.start(dir, fmt.Sprintf("workers-%d", i), "serve", "--workers-only", "--config", cfgFile)
		if err != nil {
			return nil, err
		}
		ps = append(ps, w)
		if err := w.waitStdout(ctx, "modgate workers", 2*time.Minute); err != nil {
			return nil, err
		}
	}
	// Each process builds its SBOM generator in the background at start; the
	// clock starts after, as it would in a service that has been running.
	for _, p := range ps {
		if err := p.waitLog(ctx, "sbom generator ready", 2*time.Minute); err != nil {
			return nil, err
		}
	}
	b.logf("service: %d process(es) ready in %v (HTTP %s, NATS %s)", procs, time.Since(t0).Round(time.Millisecond), base, natsURL)

	qc, err := queue.Start(ctx, queue.Config{URL: natsURL}, nil)
	if err != nil {
		return nil, err
	}
	defer qc.Close()

	var warmJobs []*job
	if len(b.warm) > 0 {
		t := time.Now()
		if warmJobs, _, err = admitAll(ctx, qc, b.warm); err != nil {
			return nil, fmt.Errorf("warm-up: %w%s", err, logTails(ps))
		}
		b.logf("service: %d warm-up admission(s) in %v", len(b.warm), time.Since(t).Round(time.Millisecond))
	}
	// modgate serve enqueues the admission of every public dependency of an
	// admitted version that it has not admitted: let the warm-up's finish
	// before the clock starts.
	t := time.Now()
	if err := waitDrained(ctx, qc, 10*time.Minute); err != nil {
		return nil, fmt.Errorf("waiting for the queue to drain after the warm-up: %w", err)
	}
	b.logf("service: queue drained in %v", time.Since(t).Round(time.Millisecond))

	load, self0 := startLoad(), selfCPU()
	cpu0 := make([]cpuTimes, len(ps))
	for i, p := range ps {
		cpu0[i], _ = procCPU(p.cmd.Process.Pid)
	}
	jobs, wall, err := admitAll(ctx, qc, b.measured)
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, logTails(ps))
	}
	var cpu cpuTimes
	for i, p := range ps {
		if c, err := procCPU(p.cmd.Process.Pid); err == nil {
			d := c.sub(cpu0[i])
			cpu.Self += d.Self
			cpu.Children += d.Children
		}
	}
	otherCores, steal := load.stop(cpu.Self + cpu.Children + selfCPU().Self - self0.Self)
	res := &serviceResult{Procs: procs, Workers: workers, N: len(jobs), WallSeconds: wall.Seconds(),
		Rate: float64(len(jobs)) / wall.Seconds(), Warmup: len(b.warm), Dir: dir}
	res.Stages = stageSummaries(jobs)
	res.OtherCores, res.Steal = otherCores, steal
	res.CPUSelfMS = ms(cpu.Self) / float64(len(jobs))
	res.CPUChildrenMS = ms(cpu.Children) / float64(len(jobs))
	for _, j := range jobs {
		if j.Verdict.Hashes != nil && j.Verdict.Hashes.Zip == j.Entry.ZipHash {
			res.HashesAsPublic++
		}
	}
	// The versions are served: every .info answers 200.
	for _, j := range jobs {
		if err := checkServed(ctx, base, j.Entry); err != nil {
			return nil, err
		}
	}
	if b.reverifyRuns > 0 {
		// Let the public dependencies' admissions finish: they are
		// re-verified too.
		if err := waitDrained(ctx, qc, 10*time.Minute); err != nil {
			return nil, fmt.Errorf("waiting for the queue to drain before re-verifying: %w", err)
		}
		if res.Reverify, err = b.reverifyPhase(ctx, cfgFile, dir, b.reverifyRuns); err != nil {
			return nil, fmt.Errorf("re-verification: %w%s", err, logTails(ps))
		}
		b.reverifyRuns = 0 // once, in the first service run
	}
	for i := len(ps) - 1; i >= 0; i-- {
		if err := ps[i].stop(45 * time.Second); err != nil {
			b.logf("service: %v", err)
		}
	}
	ours := map[string]bool{}
	for _, j := range append(append([]*job(nil), jobs...), warmJobs...) {
		ours[j.EventID] = true
	}
	start, end := jobs[0].Enqueued, jobs[0].Enqueued.Add(wall)
	for _, p := range ps {
		ran := p.admissions()
		res.PerProcess = append(res.PerProcess, countRan(ran, jobs))
		res.WarmedUp = append(res.WarmedUp, countRan(ran, warmJobs))
		for id, at := range ran {
			if !ours[id] && !at.Before(start) && !at.After(end) {
				res.OtherAdmissions++
			}
		}
	}
	ps = nil
	return res, nil
}

// admitAll enqueues every entry, as fast as the queue takes them, and waits
// for every verdict; wall is from the first enqueue to the last verdict. Every
// verdict must be "admitted".
func admitAll(ctx context.Context, qc *queue.Conn, entries []Entry) ([]*job, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	jobs := make([]*job, len(entries))
	var wg sync.WaitGroup
	nonce := time.Now().UTC().Format(time.RFC3339Nano)
	t0 := time.Now()
	for i, e := range entries {
		j := &job{Entry: e, Enqueued: time.Now()}
		jobs[i] = j
		id, _, err := qc.Enqueue(ctx, queue.Request{Kind: queue.KindAdmit, Repo: e.Repo, Tag: e.Tag, Source: "bench", Nonce: nonce})
		if err != nil {
			cancel()
			wg.Wait()
			return nil, 0, err
		}
		j.EventID = id
		wg.Add(1)
		go func() {
			defer wg.Done()
			j.Record, j.Err = qc.WaitVerdict(ctx, id)
			j.Done = time.Now()
		}()
	}
	wg.Wait()
	var last time.Time
	var problems []string
	for _, j := range jobs {
		if j.Done.After(last) {
			last = j.Done
		}
		if j.Err != nil {
			problems = append(problems, fmt.Sprintf("%s@%s: waiting for the verdict: %v", j.Entry.Module, j.Entry.Version, j.Err))
			continue
		}
		if len(j.Record.Verdict) > 0 {
			if err := json.Unmarshal(j.Record.Verdict, &j.Verdict); err != nil {
				problems = append(problems, fmt.Sprintf("%s@%s: verdict: %v", j.Entry.Module, j.Entry.Version, err))
				continue
			}
		}
		if j.Record.Result != "admitted" || j.Verdict.Result != "admitted" {
			why := j.Record.Error
			for _, p := range j.Verdict.Problems {
				why += "\n    " + p.Check + ": " + p.Reason
			}
			problems = append(problems, fmt.Sprintf("%s@%s: %s (%s)%s", j.Entry.Module, j.Entry.Version, j.Record.Result, j.Verdict.Result, why))
		}
	}
	if len(problems) > 0 {
		return jobs, 0, fmt.Errorf("%d of %d admissions did not end \"admitted\":\n  %s", len(problems), len(jobs), strings.Join(problems, "\n  "))
	}
	return jobs, last.Sub(t0), nil
}

// stageSummaries summarizes each stage's duration over the jobs, in
// pipeline order, then the whole admission, the queue wait and the latency
// from enqueue to verdict.
func stageSummaries(jobs []*job) []summary {
	var order []string
	byStage := map[string][]float64{}
	var adm, wait, e2e []float64
	for _, j := range jobs {
		for _, s := range j.Verdict.Stages {
			if _, ok := byStage[s.Name]; !ok {
				order = append(order, s.Name)
			}
			byStage[s.Name] = append(byStage[s.Name], s.DurationMS)
		}
		adm = append(adm, j.Verdict.DurationMS)
		wait = append(wait, ms(j.Verdict.Started.Sub(j.Enqueued)))
		e2e = append(e2e, ms(j.Done.Sub(j.Enqueued)))
	}
	var out []summary
	for _, name := range order {
		out = append(out, summarize(name, byStage[name]))
	}
	return append(out, summarize("admission", adm), summarize("queue wait", wait), summarize("end to end", e2e))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writeConfig writes modgate's configuration for one service run: every
// corpus repository may publish its module, one signer group (the corpus's
// ssh and gpg keys) may sign them all, a checksum database, cosign signing,
// a policy directory, and the public checksum database as `go env` has it.
func (b *bench) writeConfig(file, dir string, httpPort, natsPort, workers int) error {
	policies := filepath.Join(dir, "policies")
	if err := os.MkdirAll(policies, 0o755); err != nil {
		return err
	}
	var all []Entry
	all = append(append(all, b.warm...), b.measured...)
	var mods []string
	for _, e := range all {
		if !slices.Contains(mods, e.Module) {
			mods = append(mods, e.Module)
		}
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	ql := func(ss []string) string {
		var out []string
		for _, s := range ss {
			out = append(out, q(s))
		}
		return "[" + strings.Join(out, ", ") + "]"
	}
	policy := fmt.Sprintf(`description: The benchmark corpus's release policy.
modules: %s
rules:
  - name: release-team
    expr: input.tag.signer_group == "release-team"
  - name: no-local-replace
    expr: "!input.gomod.replaces.exists(r, r.local)"
  - name: module-license
    expr: >
      input.licenses.size() > 0 &&
      input.licenses.all(l, licenses.allowed(l, ["MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "MPL-2.0"]))
    action: warn
`, ql(mods))
	if err := os.WriteFile(filepath.Join(policies, "release.yaml"), []byte(policy), 0o644); err != nil {
		return err
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "data_dir: %s\n", q(filepath.Join(dir, "data")))
	fmt.Fprintf(&sb, "server:\n  listen: %s\n", q(fmt.Sprintf("127.0.0.1:%d", httpPort)))
	fmt.Fprintf(&sb, "nats:\n  listen: %s\n", q(fmt.Sprintf("127.0.0.1:%d", natsPort)))
	if workers > 0 {
		fmt.Fprintf(&sb, "  workers: %d\n", workers)
	}
	fmt.Fprintf(&sb, "checksum_db:\n  key_file: %s\n", q(b.sumdbKey))
	fmt.Fprintf(&sb, "public_sumdb:\n  goproxy: %s\n  gosumdb: %s\n", q(b.goproxy), q(b.gosumdb))
	fmt.Fprintf(&sb, "signing:\n  key_file: %s\n  password_file: %s\n", q(b.cosignKey), q(b.cosignPassword))
	fmt.Fprintf(&sb, "policies:\n  dir: %s\n", q(policies))
	// The corpus's public dependencies are reported in the verdicts, not
	// admitted: their admissions (downloads from the public proxy, which
	// this policy would refuse) are not the work measured here. And no
	// scheduled re-verification may start during a run.
	sb.WriteString("upstream:\n  dependencies: report\nreverify:\n  schedule: \"off\"\n")
	sb.WriteString("repositories:\n")
	for _, e := range all {
		fmt.Fprintf(&sb, "  - url: %s\n    modules: [%s]\n", q(e.Repo), q(e.Module))
	}
	k := b.corpus.Keys
	fmt.Fprintf(&sb, "signers:\n  - name: release-team\n    modules: %s\n    openpgp_keys: [%s]\n    ssh_allowed_signers: %s\n",
		ql(mods), q(k.GPGPublic), q(k.AllowedSigners))
	return os.WriteFile(file, []byte(sb.String()), 0o644)
}

// proc is a modgate process with its output in files.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    string // stderr (JSON logs)
	out    string // stdout
	done   chan struct{}
	outMu  sync.Mutex
	stdout strings.Builder
}

func (b *bench) start(dir, name string, args ...string) (*proc, error) {
	if b.cpuProfiles != "" {
		args = append(args, "--cpuprofile", filepath.Join(b.cpuProfiles, filepath.Base(dir)+"-"+name+".prof"))
	}
	p := &proc{name: name, log: filepath.Join(dir, name+".log"), out: filepath.Join(dir, name+".out"), done: make(chan struct{})}
	logf, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	outf, err := os.Create(p.out)
	if err != nil {
		logf.Close()
		return nil, err
	}
	p.cmd = exec.Command(b.bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GOTOOLCHAIN=local")
	p.cmd.Stderr = logf
	pr, pw := io.Pipe()
	p.cmd.Stdout = pw
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		outf.Close()
		return nil, fmt.Errorf("start modgate %s: %w", strings.Join(args, " "), err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(outf, sc.Text())
			p.outMu.Lock()
			p.stdout.WriteString(sc.Text() + "\n")
			p.outMu.Unlock()
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		p.cmd.Wait()
		pw.Close()
		logf.Close()
		outf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// admissions returns the event ids of the admissions the process logged,
// with the time each ended.
func (p *proc) admissions() map[string]time.Time {
	ids := map[string]time.Time{}
	f, err := os.Open(p.log)
	if err != nil {
		return ids
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Time    time.Time `json:"time"`
			Msg     string    `json:"msg"`
			EventID string    `json:"event_id"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "admission" && line.EventID != "" {
			ids[line.EventID] = line.Time
		}
	}
	return ids
}

func countRan(ran map[string]time.Time, jobs []*job) int {
	n := 0
	for _, j := range jobs {
		if _, ok := ran[j.EventID]; ok {
			n++
		}
	}
	return n
}

// waitDrained waits until no admission is waiting or running.
func waitDrained(ctx context.Context, qc *queue.Conn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	idle := 0
	for idle < 3 {
		d, err := qc.QueueDepth(ctx)
		if err != nil {
			return err
		}
		if d.Pending == 0 && d.InFlight == 0 {
			idle++
		} else {
			idle = 0
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%d waiting, %d running)", ctx.Err(), d.Pending, d.InFlight)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// waitStdout waits until the process has printed s.
func (p *proc) waitStdout(ctx context.Context, s string, timeout time.Duration) error {
	return p.waitUntil(ctx, timeout, fmt.Sprintf("printed %q", s), func() bool {
		p.outMu.Lock()
		defer p.outMu.Unlock()
		return strings.Contains(p.stdout.String(), s)
	})
}

// waitLog waits until the process's log holds s.
func (p *proc) waitLog(ctx context.Context, s string, timeout time.Duration) error {
	return p.waitUntil(ctx, timeout, fmt.Sprintf("logged %q", s), func() bool {
		data, err := os.ReadFile(p.log)
		return err == nil && strings.Contains(string(data), s)
	})
}

// waitUntil polls ok until it holds, the process exits or timeout passes.
func (p *proc) waitUntil(ctx context.Context, timeout time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok() {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("modgate %s exited with %v before it %s:%s", p.name, p.cmd.ProcessState, what, p.tail(30))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("modgate %s had not %s within %v:%s", p.name, what, timeout, p.tail(30))
}

// stop sends SIGINT, as an operator would, and kills the process if it has
// not exited in time.
func (p *proc) stop(timeout time.Duration) error {
	if p.exited() {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("modgate %s did not stop within %v of SIGINT; killed", p.name, timeout)
	}
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n--- " + p.log + " (last lines)\n" + strings.Join(lines, "\n")
}

func logTails(ps []*proc) string {
	var s string
	for _, p := range ps {
		s += p.tail(15)
	}
	return s
}

// waitReady waits until modgate serve answers /readyz with 200.
func waitReady(ctx context.Context, base string, p *proc, timeout time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("modgate %s exited with %v before it was ready:%s", p.name, p.cmd.ProcessState, p.tail(30))
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/readyz", nil)
		resp, err := c.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("modgate %s not ready within %v:%s", p.name, timeout, p.tail(30))
}

// checkServed checks that the proxy serves the version's .info.
func checkServed(ctx context.Context, base string, e Entry) error {
	ep, err1 := module.EscapePath(e.Module)
	ev, err2 := module.EscapeVersion(e.Version)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/"+ep+"/@v/"+ev+".info", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s@%s: proxy: %w", e.Module, e.Version, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s@%s: proxy answers %s for the .info of an admitted version", e.Module, e.Version, resp.Status)
	}
	return nil
}

// freePort returns a TCP port that was free a moment ago on 127.0.0.1.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
