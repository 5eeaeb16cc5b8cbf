package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The shell chain is what teams run today for each release tag, one
// command after the other, as a CI job would:
//
//	git clone --branch <tag> <repo> <dir>       the CI checkout
//	git verify-tag <tag>                        gpg.ssh.allowedSignersFile set; GNUPGHOME with the gpg key
//	go mod verify                               GOFLAGS=-mod=mod, the shared module cache, GOPROXY as set
//	syft scan dir:<dir> -o spdx-json=<file>     the SBOM
//	cosign sign-blob --key cosign.key --tlog-upload=false --yes <file>
//
// `go mod download` is not run or counted: the corpus builder made sure
// every module's go.sum is complete offline against the shared module cache
// (GOPROXY=off), so the chain never downloads, which favours the chain.
var chainSteps = []string{"git clone", "git verify-tag", "go mod verify", "syft", "cosign sign-blob"}

// chainResult is what the chain measured.
type chainResult struct {
	N           int       `json:"modules"`
	Jobs        int       `json:"parallel_jobs"`
	WallSeconds float64   `json:"wall_seconds"`
	Rate        float64   `json:"modules_per_second"`
	Steps       []summary `json:"steps"` // per step, then "module" (all steps of one module)
	// CPU time (user + system, with the commands' own children) per module,
	// in all and per step.
	CPUMS     float64   `json:"cpu_ms_per_module"`
	StepCPUMS []float64 `json:"cpu_ms_per_module_per_step"`
	// OtherCores and Steal: as in serviceResult.
	OtherCores float64 `json:"other_load_cores"`
	Steal      float64 `json:"steal_cores"`
}

// chainTools are the CLIs of the chain.
type chainTools struct {
	git, gobin, syft, cosign string
}

// runChain runs the chain over the measured entries, jobs modules at a time
// (1: strictly one after the other).
func (b *bench) runChain(ctx context.Context, tools chainTools, jobs int) (*chainResult, error) {
	dir := filepath.Join(b.dir, "chain")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	password, err := os.ReadFile(b.cosignPassword)
	if err != nil {
		return nil, err
	}
	durs := make([][]time.Duration, len(b.measured)) // per entry, per step: wall, then CPU
	cpus := make([][]time.Duration, len(b.measured))
	errs := make([]error, len(b.measured))
	sem := make(chan struct{}, max(1, jobs))
	var wg sync.WaitGroup
	load, self0 := startLoad(), selfCPU()
	t0 := time.Now()
	for i, e := range b.measured {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			durs[i], cpus[i], errs[i] = b.chainOne(ctx, tools, e, filepath.Join(dir, fmt.Sprintf("%02d", i)), string(password))
		}()
		if ctx.Err() != nil {
			break
		}
	}
	wg.Wait()
	wall := time.Since(t0)
	selfUsed := selfCPU().Self - self0.Self
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s@%s: %v", b.measured[i].Module, b.measured[i].Version, err))
		}
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("shell chain failed for %d of %d modules:\n  %s", len(failed), len(b.measured), strings.Join(failed, "\n  "))
	}
	res := &chainResult{N: len(b.measured), Jobs: max(1, jobs), WallSeconds: wall.Seconds(), Rate: float64(len(b.measured)) / wall.Seconds()}
	var total []float64
	for s, name := range chainSteps {
		var v []float64
		for i := range durs {
			v = append(v, ms(durs[i][s]))
		}
		res.Steps = append(res.Steps, summarize(name, v))
	}
	for i := range durs {
		var t time.Duration
		for _, d := range durs[i] {
			t += d
		}
		total = append(total, ms(t))
	}
	res.Steps = append(res.Steps, summarize("module", total))
	var cpu time.Duration
	for i := range cpus {
		for s, d := range cpus[i] {
			cpu += d
			if len(res.StepCPUMS) <= s {
				res.StepCPUMS = append(res.StepCPUMS, 0)
			}
			res.StepCPUMS[s] += ms(d) / float64(len(cpus))
		}
	}
	res.CPUMS = ms(cpu) / float64(len(cpus))
	res.OtherCores, res.Steal = load.stop(cpu + selfUsed)
	return res, nil
}

// chainOne runs every step of the chain for one module and returns each
// step's wall and CPU time.
func (b *bench) chainOne(ctx context.Context, tools chainTools, e Entry, dir, password string) (durs, cpus []time.Duration, err error) {
	work := filepath.Join(dir, "src")
	sbom := filepath.Join(dir, e.Version+".spdx.json")
	if err := removeAll(dir); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	gitEnv := gitEnv(&b.corpus.Keys)
	steps := []struct {
		dir  string
		env  []string
		argv []string
	}{
		{dir, gitEnv, []string{tools.git, "clone", "-q", "-c", "advice.detachedHead=false", "--branch", e.Tag, e.Repo, work}},
		{work, gitEnv, []string{tools.git, "-c", "gpg.ssh.allowedSignersFile=" + b.corpus.Keys.AllowedSigners, "verify-tag", e.Tag}},
		{work, []string{"GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "GOWORK=off"}, []string{tools.gobin, "mod", "verify"}},
		{work, []string{"SYFT_CHECK_FOR_APP_UPDATE=false"}, []string{tools.syft, "scan", "dir:" + work, "-o", "spdx-json=" + sbom, "-q", "--exclude", "./.git"}},
		{dir, []string{"COSIGN_PASSWORD=" + password}, []string{tools.cosign, "sign-blob", "--key", b.cosignKey, "--tlog-upload=false", "--yes",
			"--output-signature", sbom + ".sig", sbom}},
	}
	for i, s := range steps {
		cmd := exec.CommandContext(ctx, s.argv[0], s.argv[1:]...)
		cmd.Dir = s.dir
		cmd.Env = append(os.Environ(), s.env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		t := time.Now()
		err := cmd.Run()
		durs = append(durs, time.Since(t))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v\n%s", chainSteps[i], err, indent(out.String()))
		}
		cpus = append(cpus, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	}
	if fi, err := os.Stat(sbom + ".sig"); err != nil || fi.Size() == 0 {
		return nil, nil, fmt.Errorf("cosign sign-blob wrote no signature (%v)", err)
	}
	return durs, cpus, nil
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if len(s) > 2000 {
		s = s[:2000] + " …"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
