//go:build unix

package reverify_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sync/errgroup"

	"github.com/modgate/modgate/config"
	"github.com/modgate/modgate/internal/pgptest"
	"github.com/modgate/modgate/internal/rawhash"
	"github.com/modgate/modgate/internal/testrepo"
	"github.com/modgate/modgate/pipeline"
	"github.com/modgate/modgate/policies"
	"github.com/modgate/modgate/reverify"
	"github.com/modgate/modgate/sbom"
	"github.com/modgate/modgate/sbom/sbomtest"
	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/store/storetest"
	"github.com/modgate/modgate/sumlog"
	"github.com/modgate/modgate/verifiers/integrity"
)

// corpus is a store of admitted versions made without git or syft, but
// with everything re-verification checks: zips and go.mod in the store,
// their records in a real checksum log, a signed SBOM and verification
// summary, an admission record with the policy input and an OpenPGP-signed
// tag object.
type corpus struct {
	dir      string
	cfg      *config.Config
	store    *store.Dir
	log      *sumlog.Log
	verifier note.Verifier
	signer   *sbom.Signer
	versions []module.Version
	bytes    int64
}

func buildCorpus(tb testing.TB, n, size int) *corpus {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	c := &corpus{dir: dir}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pgpCfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Curve: packet.Curve25519, Time: func() time.Time { return at }}
	e, err := openpgp.NewEntity("Rel Eng", "", "releng@example.com", pgpCfg)
	if err != nil {
		tb.Fatal(err)
	}
	keyFile := filepath.Join(dir, "releng.asc")
	must(tb, os.WriteFile(keyFile, pgptest.Public(tb, e), 0o644))
	must(tb, os.MkdirAll(filepath.Join(dir, "policies"), 0o755))
	must(tb, os.WriteFile(filepath.Join(dir, "policies", "licenses.yaml"), []byte(`modules: [corp.example]
rules:
  - name: module-license
    expr: input.licenses.size() > 0 && input.licenses.all(l, licenses.allowed(l, ["MIT", "Apache-2.0"]))
    message: "{{input.module.path}} has no license from the allow list"
`), 0o644))

	c.cfg = &config.Config{
		DataDir:      filepath.Join(dir, "data"),
		Repositories: []config.Repository{{URL: "https://git.example.com/corp", Modules: []string{"corp.example"}}},
		Signers:      []config.Signer{{Name: "release-team", Modules: []string{"corp.example"}, OpenPGPKeys: []string{keyFile}}},
	}
	c.cfg.WithDefaults()
	must(tb, c.cfg.Validate())
	if c.store, err = store.Open(c.cfg.Store.Dir); err != nil {
		tb.Fatal(err)
	}
	skey, _, err := sumlog.GenerateKey("sum.bench.example")
	if err != nil {
		tb.Fatal(err)
	}
	ls, lv, _, err := sumlog.ParseKey(skey)
	if err != nil {
		tb.Fatal(err)
	}
	c.verifier = lv
	if c.log, err = sumlog.Open(filepath.Join(dir, "sumdb"), ls, lv); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.log.Close() })
	c.signer = sbomtest.NewSigner(tb)

	// Versions are built concurrently; publishing is serialized.
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.NumCPU())
	for i := range n {
		m := module.Version{Path: fmt.Sprintf("corp.example/m%04d", i/5), Version: fmt.Sprintf("v1.0.%d", i%5)}
		c.versions = append(c.versions, m)
		g.Go(func() error {
			b, err := buildVersion(tb, c, e, pgpCfg, m, size)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			fi, _ := os.Stat(b.ZipFile)
			c.bytes += fi.Size()
			_, err = c.store.Publish(gctx, b)
			os.Remove(b.ZipFile)
			return err
		})
	}
	must(tb, g.Wait())
	return c
}

func buildVersion(tb testing.TB, c *corpus, e *openpgp.Entity, pgpCfg *packet.Config, m module.Version, size int) (*store.Version, error) {
	gomod := "module " + m.Path + "\n\ngo 1.21\n"
	payload := make([]byte, size)
	rand.Read(payload) // incompressible: the zip is about size bytes
	sv := storetest.Version(tb, m, map[string]string{
		"go.mod": gomod, "LICENSE": testrepo.MITLicense, "a.go": "package a\n", "data.bin": string(payload),
	})
	zipHash, modHash := sv.ZipHash, storetest.ModHash(tb, sv.Mod)
	zipSHA, err := sbom.SHA256File(sv.ZipFile)
	if err != nil {
		return nil, err
	}
	doc := []byte(fmt.Sprintf(`{"spdxVersion":"SPDX-2.3","name":%q}`, m.String()))
	sig, bundle, err := c.signer.SignBlob(doc)
	if err != nil {
		return nil, err
	}
	docSum := sha256.Sum256(doc)
	tagTime := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	tagPayload := fmt.Appendf(nil, "object %040x\ntype commit\ntag %s\ntagger Rel Eng <releng@example.com> %d +0000\n\nrelease\n", docSum[:20], m.Version, tagTime.Unix())
	var tagSig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&tagSig, e, bytes.NewReader(tagPayload), pgpCfg); err != nil {
		return nil, err
	}
	tagObj := append(tagPayload, tagSig.Bytes()...)
	if !bytes.HasSuffix(tagObj, []byte("\n")) {
		tagObj = append(tagObj, '\n')
	}
	in := &policies.Input{Module: policies.NewModule(m.Path, m.Version, tagTime), Repository: "https://git.example.com/corp",
		Tag: policies.Tag{Name: m.Version, Time: tagTime}, Licenses: []string{"MIT"}}
	rec, err := json.Marshal(&pipeline.Record{Module: m.Path, Version: m.Version, Input: in,
		Hashes: &pipeline.Hashes{Zip: zipHash, Mod: modHash}, TagObject: tagObj})
	if err != nil {
		return nil, err
	}
	// As admission signs it: the SBOM, the admission record, the .info and
	// the SBOM's bundle are named.
	sum := sbom.Summary{Module: m.Path, Version: m.Version, ZipSHA256: zipSHA, ZipHash: zipHash,
		PolicyURI: pipeline.VerifierID + "/policies", Verified: time.Now().UTC(), VerifierID: pipeline.VerifierID}
	if sum.Inputs, err = integrity.AdmissionInputs(m, map[string][]byte{
		store.DocSPDX: doc, store.DocVerdict: rec, ".info": sv.Info, store.DocSPDXBundle: bundle,
	}); err != nil {
		return nil, err
	}
	env, err := c.signer.SignSummary(sum)
	if err != nil {
		return nil, err
	}
	text := fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", m.Path, m.Version, zipHash, m.Path, m.Version, modHash)
	sv.Docs = map[string][]byte{store.DocSPDX: doc, store.DocSPDXSig: sig, store.DocSPDXBundle: bundle, store.DocInToto: env, store.DocVerdict: rec}
	sv.Record = func(ctx context.Context) error {
		_, err := c.log.Append(ctx, m, []byte(text))
		return err
	}
	return sv, nil
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func (c *corpus) pipeline(tb testing.TB) *pipeline.Pipeline {
	p, err := pipeline.New(c.cfg, pipeline.Options{Store: c.store, ChecksumLog: c.log, Signer: c.signer, Version: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	set, err := policies.Load(filepath.Join(c.dir, "policies"))
	if err != nil {
		tb.Fatal(err)
	}
	p.SetPolicies(set)
	return p
}

// run re-verifies the whole corpus once.
func (c *corpus) run(tb testing.TB, p *pipeline.Pipeline, concurrency int) *reverify.ShardReport {
	ctx := context.Background()
	rv, err := p.NewReverifier(ctx, pipeline.ReverifyOptions{Log: c.log, Verifier: c.verifier})
	if err != nil {
		tb.Fatal(err)
	}
	rep, err := reverify.RunShard(ctx, rv, c.store, c.versions, reverify.Options{Run: "bench", Concurrency: concurrency})
	if err != nil {
		tb.Fatal(err)
	}
	if rep.Counts[reverify.Good] != len(c.versions) {
		tb.Fatalf("not all good: %s", rep.Text())
	}
	return rep
}

// zipOnly is what the strict baseline hashes of each version: its zip.
var zipOnly = []string{".zip"}

// readFiles are the files a shallow re-verification reads and hashes
// with SHA-256 (the zip, go.mod, the SBOM, its signature, the verification
// summary, the admission record, .info and SBOM bundle the summary names,
// and .ziphash): the same bytes, for the raw baseline.
var readFiles = integrity.ReadSuffixes()

// rawSHA256 hashes the given files of every stored version once, with the
// same concurrency: the floor of any re-verification that must read and
// hash them (rawhash.Files). The files are found before the clock starts:
// nothing of modgate's store is timed.
func (c *corpus) rawSHA256(tb testing.TB, concurrency int, suffixes []string) time.Duration {
	ctx := context.Background()
	var paths []string
	for _, m := range c.versions {
		for _, suffix := range suffixes {
			f, err := c.store.OpenFile(ctx, m, suffix)
			must(tb, err)
			paths = append(paths, f.Name())
			f.Close()
		}
	}
	d, err := rawhash.Files(paths, concurrency)
	must(tb, err)
	return d
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestReverifyThroughput re-verifies a corpus of MODGATE_REVERIFY_N
// (5,000) synthetic versions of MODGATE_REVERIFY_SIZE (256 KiB) bytes
// MODGATE_REVERIFY_ROUNDS (5) times and compares the rate with the raw
// SHA-256 rate over the same zips, and over every file it reads, in the
// same rounds. The first round proves every version in full; the next
// find them unchanged (pipeline's proven.go), as a nightly run does after
// the first. It also measures the latency of admissions made while a
// full re-verification runs. `make bench-reverify`; skipped otherwise.
func TestReverifyThroughput(t *testing.T) {
	if os.Getenv("MODGATE_BENCH_REVERIFY") == "" {
		t.Skip("set MODGATE_BENCH_REVERIFY=1 (make bench-reverify)")
	}
	n, size := envInt("MODGATE_REVERIFY_N", 5000), envInt("MODGATE_REVERIFY_SIZE", 256<<10)
	conc := runtime.NumCPU()
	start := time.Now()
	c := buildCorpus(t, n, size)
	t.Logf("corpus: %d versions, %.1f MB of zips, built in %.1fs", n, float64(c.bytes)/1e6, time.Since(start).Seconds())
	p := c.pipeline(t)

	c.rawSHA256(t, conc, readFiles) // warm the page cache: both sides read from memory
	rounds := envInt("MODGATE_REVERIFY_ROUNDS", 5)
	var rates, ofZips, ofFiles []float64 // of the warm rounds
	for round := 1; round <= rounds; round++ {
		raw := c.rawSHA256(t, conc, zipOnly)
		rawAll := c.rawSHA256(t, conc, readFiles)
		rep := c.run(t, p, conc)
		rv := time.Duration(rep.DurationMS * float64(time.Millisecond))
		rawRate, rvRate := float64(c.bytes)/raw.Seconds(), float64(c.bytes)/rv.Seconds()
		t.Logf("round %d: re-verification %d versions (%d unchanged since proven) in %.2fs = %.0f versions/s, %.0f MB/s of zips; "+
			"raw SHA-256 of the zips %.2fs = %.0f MB/s (ratio %.0f%%); of every file re-verification reads (%d a version) %.2fs (ratio %.0f%%)",
			round, n, rep.Remembered, rv.Seconds(), float64(n)/rv.Seconds(), rvRate/1e6, raw.Seconds(), rawRate/1e6, 100*rvRate/rawRate,
			len(readFiles), rawAll.Seconds(), 100*rawAll.Seconds()/rv.Seconds())
		if round > 1 {
			rates = append(rates, float64(n)/rv.Seconds())
			ofZips = append(ofZips, 100*rvRate/rawRate)
			ofFiles = append(ofFiles, 100*rawAll.Seconds()/rv.Seconds())
		}
	}
	if len(rates) > 0 {
		t.Logf("warm rounds (%d): %.0f versions/s (median; %.0f–%.0f); of raw SHA-256 of the zips %.0f%% (%.0f–%.0f%%); of every file %.0f%% (%.0f–%.0f%%)",
			len(rates), median(rates), slices.Min(rates), slices.Max(rates), median(ofZips), slices.Min(ofZips), slices.Max(ofZips),
			median(ofFiles), slices.Min(ofFiles), slices.Max(ofFiles))
	}

	// Admission latency, without and then with a full re-verification
	// running beside it (with the configured concurrency).
	testrepo.Require(t)
	lat := admissionLatency(t, c, p, nil)
	t.Logf("admission latency alone:            p50 %v p95 %v (%d admissions)", pct(lat, 50), pct(lat, 95), len(lat))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	// As in modgate serve: the shard sees the admissions of its process.
	busy := &admissionsBusy{}
	var checked atomic.Int64
	progress := func(module.Version, reverify.Outcome) { checked.Add(1) }
	go func() {
		runs := 0
		for ctx.Err() == nil {
			rv, err := p.NewReverifier(ctx, pipeline.ReverifyOptions{Log: c.log, Verifier: c.verifier})
			if err != nil {
				break
			}
			if _, err := reverify.RunShard(ctx, rv, c.store, c.versions, reverify.Options{Run: "beside", Concurrency: conc, Busy: busy.Load, Progress: progress}); err != nil {
				break
			}
			runs++
		}
		done <- runs
	}()
	time.Sleep(200 * time.Millisecond)
	before, start := checked.Load(), time.Now()
	lat = admissionLatency(t, c, p, busy)
	during, took := checked.Load()-before, time.Since(start)
	cancel()
	runs := <-done
	// The run yields to admissions, so it goes on between them (making the
	// next tag, a git commit and tag, takes a few milliseconds) and at
	// least one version every 500 ms.
	t.Logf("admission latency during re-verification: p50 %v p95 %v (%d admissions in %.1fs; meanwhile the run re-verified %d versions, %.0f/s; %d full runs completed)",
		pct(lat, 50), pct(lat, 95), len(lat), took.Seconds(), during, float64(during)/took.Seconds(), runs)
}

// admissionLatency admits 10 fresh tags of a real repository through the
// pipeline (git, signature, zip, SBOM, policy, sign, publish) and returns
// their durations.
func admissionLatency(t *testing.T, c *corpus, _ *pipeline.Pipeline, busy *admissionsBusy) []time.Duration {
	k := keysOnce(t)
	dir := t.TempDir()
	r := testrepo.NewRepo(t, k, filepath.Join(dir, "repo"))
	path := fmt.Sprintf("corp.example/live%d", time.Now().UnixNano())
	r.Module("", path)
	r.Write(map[string]string{"LICENSE": testrepo.MITLicense})
	cfg := *c.cfg
	cfg.Repositories = []config.Repository{{URL: r.Dir, Modules: []string{"corp.example"}}}
	cfg.Signers = []config.Signer{{Name: "release-team", Modules: []string{"corp.example"}, SSHAllowedSigners: k.AllowedSigners}}
	p, err := pipeline.New(&cfg, pipeline.Options{Store: c.store, ChecksumLog: c.log, Signer: c.signer, Version: "bench"})
	if err != nil {
		t.Fatal(err)
	}
	set, err := policies.Load(filepath.Join(c.dir, "policies"))
	must(t, err)
	p.SetPolicies(set)
	var lat []time.Duration
	for i := range 11 {
		r.Write(map[string]string{"v.go": fmt.Sprintf("package x\n\nconst V = %d\n", i)})
		r.Commit(fmt.Sprint(i))
		tag := fmt.Sprintf("v1.0.%d", i)
		r.TagSSH(tag)
		start := time.Now()
		if busy != nil {
			busy.n.Add(1)
		}
		v := p.Admit(context.Background(), pipeline.Request{Repo: r.Dir, Tag: tag})
		if busy != nil {
			busy.n.Add(-1)
		}
		if v.Result != pipeline.Admitted {
			t.Fatalf("admission %s: %s %v", tag, v.Result, v.Lines())
		}
		if i > 0 { // the first one builds the SBOM generator
			lat = append(lat, time.Since(start))
		}
	}
	return lat
}

// admissionsBusy stands in for Reverifier.Busy: the admissions here run on
// their own pipeline (another repository), as they would on another worker
// of the same process.
type admissionsBusy struct{ n atomic.Int64 }

func (b *admissionsBusy) Load() bool { return b.n.Load() > 0 }

// keysOnce makes the signing keys of the admissions once per test, in its
// temporary directory (removed with it, which also stops its gpg-agent).
func keysOnce(t *testing.T) *testrepo.Keys {
	keysMu.Lock()
	defer keysMu.Unlock()
	if keysDone[t] == nil {
		keysDone[t] = testrepo.NewKeys(t, t.TempDir())
	}
	return keysDone[t]
}

var (
	keysMu   sync.Mutex
	keysDone = map[*testing.T]*testrepo.Keys{}
)

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func pct(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i].Round(time.Millisecond)
}

// BenchmarkReverifyVersion is the per-version cost of a shallow
// re-verification of a 64 KiB version (hashes, log proof, SBOM signature,
// summary, tag signature, policy, new summary).
func BenchmarkReverifyVersion(b *testing.B) {
	c := buildCorpus(b, 50, envInt("MODGATE_REVERIFY_SIZE", 64<<10))
	p := c.pipeline(b)
	ctx := context.Background()
	rv, err := p.NewReverifier(ctx, pipeline.ReverifyOptions{Log: c.log, Verifier: c.verifier})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(c.bytes / int64(len(c.versions)))
	i := 0
	for b.Loop() {
		res, err := rv.Version(ctx, c.versions[i%len(c.versions)])
		if err != nil || !res.Passed() {
			b.Fatalf("%+v %v", res, err)
		}
		i++
	}
}

// BenchmarkReverifyRun is the per-version cost of a whole shallow run over
// 500 versions of 64 KiB (MODGATE_REVERIFY_SIZE): what BenchmarkReverifyVersion
// measures plus the run's own work (quarantine state, the batch summary).
func BenchmarkReverifyRun(b *testing.B) {
	c := buildCorpus(b, 500, envInt("MODGATE_REVERIFY_SIZE", 64<<10))
	p := c.pipeline(b)
	b.SetBytes(c.bytes)
	concurrency := envInt("MODGATE_REVERIFY_CONCURRENCY", runtime.NumCPU())
	var cpu time.Duration
	for b.Loop() {
		before := cpuTime()
		c.run(b, p, concurrency)
		cpu += cpuTime() - before
	}
	n := float64(b.N * len(c.versions))
	perRun := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/version")
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/version")
	// The raw SHA-256 baselines with as many workers, timed here (outside
	// the benchmark's clock), best of five.
	b.StopTimer()
	for _, base := range []struct {
		unit     string
		suffixes []string
	}{{"%raw-zips", zipOnly}, {"%raw-files", readFiles}} {
		best := time.Duration(math.MaxInt64)
		for range 5 {
			best = min(best, c.rawSHA256(b, concurrency, base.suffixes))
		}
		b.ReportMetric(100*float64(best)/float64(perRun), base.unit)
	}
}

// cpuTime is the CPU time the process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestReverifyCorpus: a corpus re-verified twice by one process with two
// workers is good both times, in full the first time and from the memo the
// second: the buffers a run reads into are not shared between versions.
func TestReverifyCorpus(t *testing.T) {
	c := buildCorpus(t, 300, 16<<10)
	p := c.pipeline(t)
	for round, want := range []int{0, len(c.versions)} {
		rep := c.run(t, p, 2)
		if rep.Remembered != want {
			t.Errorf("run %d: %d unchanged since proven, want %d", round+1, rep.Remembered, want)
		}
	}
}
