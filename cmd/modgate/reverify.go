package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/config"
	"github.com/modgate/modgate/metrics"
	"github.com/modgate/modgate/pipeline"
	"github.com/modgate/modgate/queue"
	"github.com/modgate/modgate/reverify"
	"github.com/modgate/modgate/store"
)

func cmdReverify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("reverify", stderr)
	cfgFile := fs.String("config", "", "configuration `file`")
	all := fs.Bool("all", false, "re-verify every admitted version")
	since := fs.String("since", "", "re-verify the versions admitted since: a duration (24h) or an RFC 3339 time")
	deep := fs.Bool("deep", false, "also regenerate each SBOM and compare it with the published one")
	asJSON := fs.Bool("json", false, "print the report as JSON on stdout")
	local := fs.Bool("local", false, "run here, on the store and checksum log (modgate serve must be stopped), instead of on the workers of modgate serve")
	progress := fs.Bool("progress", false, "show progress on stderr even when it is not a terminal")
	natsURL := fs.String("nats-url", "", "NATS `url` of modgate serve (default: nats.url, else nats://<nats.listen>)")
	timeout := fs.Duration("timeout", 24*time.Hour, "how long to wait for the run to finish")
	// MODULE[@VERSION] may come before or after the flags.
	var target string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return parseFlags(fs, args)
	}
	if target == "" && fs.NArg() > 0 {
		target = fs.Arg(0)
		if err := parseFlags(fs, fs.Args()[1:]); err != nil {
			return err
		}
	} else if fs.NArg() > 0 {
		return usageErr("reverify: unexpected argument %q", fs.Arg(0))
	}
	scope, err := reverify.ParseScope(*all, target, *since, time.Now())
	if err != nil {
		return usageErr("%v", err)
	}
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		return err
	}
	if *natsURL != "" {
		cfg.NATS.URL = *natsURL
	}
	var prog *progressMeter
	if *progress || isTerminal(stderr) {
		prog = &progressMeter{w: stderr, start: time.Now()}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var rep *reverify.ShardReport
	if *local {
		rep, err = reverifyLocal(ctx, cfg, scope, *deep, prog, stderr)
	} else {
		rep, err = reverifyQueued(ctx, cfg, scope, *deep, prog, stderr)
	}
	if err != nil {
		return err
	}
	prog.done()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprint(stdout, rep.Text())
	}
	switch {
	case rep.Counts[reverify.Errored] > 0:
		return &exitError{code: 2}
	case rep.Counts[reverify.Quarantined]+rep.Counts[reverify.StillQuarantined] > 0 || len(rep.LogFindings) > 0:
		return &exitError{code: 1}
	}
	return nil
}

// reverifyLocal runs the whole run in this process.
func reverifyLocal(ctx context.Context, cfg *config.Config, scope reverify.Scope, deep bool, prog *progressMeter, stderr io.Writer) (*reverify.ShardReport, error) {
	st, err := store.Open(cfg.Store.Dir)
	if err != nil {
		return nil, err
	}
	db, err := openChecksumDB(cfg)
	if err != nil {
		return nil, err
	}
	signer, err := loadSigner(cfg)
	if err != nil {
		return nil, err
	}
	opts := pipeline.Options{Store: st, Logger: newLogger(stderr, slog.LevelError), Signer: signer, Version: Version}
	if db != nil {
		defer db.log.Close()
		opts.ChecksumLog = db.log
	}
	p, err := newPipeline(cfg, opts, stderr)
	if err != nil {
		return nil, err
	}
	vs, err := reverify.Plan(ctx, st, scope)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	prog.setTotal(len(vs))
	run := newRunID("local")
	rv, err := newReverifier(ctx, p, db, cfg.DataDir, deep, len(vs))
	if err != nil {
		return nil, err
	}
	rep, err := reverify.RunShard(ctx, rv, st, vs, reverify.Options{Run: run, Concurrency: cfg.Reverify.Concurrency,
		Progress: func(module.Version, reverify.Outcome) { prog.add(1) }})
	if err != nil {
		return nil, err
	}
	rep.LogFindings, rep.Warnings = logFindings(rv), rv.Warnings()
	if err := saveHead(cfg.DataDir, rv); err != nil {
		return nil, err
	}
	return rep, nil
}

// reverifyQueued enqueues the run on the workers of modgate serve and
// follows it to its end.
func reverifyQueued(ctx context.Context, cfg *config.Config, scope reverify.Scope, deep bool, prog *progressMeter, stderr io.Writer) (*reverify.ShardReport, error) {
	qc, err := connectQueue(ctx, cfg, stderr)
	if err != nil {
		return nil, err
	}
	defer qc.Close()
	run := newRunID("cli")
	id, _, err := qc.Enqueue(ctx, planRequest(run, scope, deep, "cli"))
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	fmt.Fprintf(stderr, "re-verification run %s enqueued (event %s)\n", run, id)
	return awaitRun(ctx, qc, run, id, prog)
}

func planRequest(run string, s reverify.Scope, deep bool, source string) queue.Request {
	return queue.Request{Kind: queue.KindReverify, Module: s.Module, Version: s.Version, Source: source, Nonce: run,
		Reverify: &queue.ReverifyScope{Run: run, All: s.All, Since: s.Since, Deep: deep}}
}

// plan is the verdict of a run's planning job.
type plan struct {
	Run      string   `json:"run"`
	Versions int      `json:"versions"`
	Shards   []string `json:"shards"` // event ids
}

// awaitRun waits for a run's plan and then for each of its shards, and
// merges their reports.
func awaitRun(ctx context.Context, qc *queue.Conn, run, planEvent string, prog *progressMeter) (*reverify.ShardReport, error) {
	rec, err := qc.WaitVerdict(ctx, planEvent)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("waiting for the plan of run %s: %w", run, err)}
	}
	if rec.Outcome != queue.Done {
		return nil, &exitError{code: 2, err: fmt.Errorf("run %s could not be planned: %s", run, rejectReason(rec))}
	}
	var pl plan
	if err := json.Unmarshal(rec.Verdict, &pl); err != nil {
		return nil, err
	}
	prog.setTotal(pl.Versions)
	reports := make([]*reverify.ShardReport, len(pl.Shards))
	var wg sync.WaitGroup
	errs := make([]error, len(pl.Shards))
	for i, id := range pl.Shards {
		wg.Go(func() {
			rec, err := qc.WaitVerdict(ctx, id)
			if err != nil {
				errs[i] = fmt.Errorf("waiting for shard %s: %w", id, err)
				return
			}
			rep, err := shardReport(rec)
			if err != nil {
				errs[i] = err
				return
			}
			reports[i] = rep
			prog.add(rep.Versions)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return reverify.Merge(run, reports...), nil
}

// shardReport reads a shard's report from its verdict; a shard given up is
// an error for each of its versions.
func shardReport(rec queue.Record) (*reverify.ShardReport, error) {
	if rec.Outcome == queue.Done && len(rec.Verdict) > 0 {
		rep := new(reverify.ShardReport)
		if err := json.Unmarshal(rec.Verdict, rep); err != nil {
			return nil, fmt.Errorf("shard %s: %w", rec.EventID, err)
		}
		return rep, nil
	}
	rep := &reverify.ShardReport{Counts: map[reverify.Outcome]int{}, Started: rec.Time}
	var vs []string
	if rec.Request.Reverify != nil {
		vs = rec.Request.Reverify.Versions
	}
	for _, s := range vs {
		path, version, _ := strings.Cut(s, "@")
		rep.Changes = append(rep.Changes, reverify.Change{Module: path, Version: version, Outcome: reverify.Errored,
			Reason: "shard " + rec.EventID + ": " + rejectReason(rec)})
	}
	rep.Versions, rep.Counts[reverify.Errored] = len(vs), len(vs)
	return rep, nil
}

func errSuffix(rec queue.Record) string {
	if rec.Error != "" {
		return ": " + rec.Error
	}
	return ""
}

// reverifyHandler runs re-verification jobs: a plan lists the versions in
// scope and enqueues them as shards; a shard re-verifies its versions.
func reverifyHandler(cfg *config.Config, p *pipeline.Pipeline, pr *policyReloader, st *store.Dir, db *checksumDB, qc *queue.Conn, m *metrics.Metrics, log *slog.Logger) func(ctx context.Context, r queue.Request, progress func()) (queue.Result, error) {
	return func(ctx context.Context, r queue.Request, progress func()) (queue.Result, error) {
		scope := r.Reverify
		if scope == nil { // one version, from an older client or another tool
			scope = &queue.ReverifyScope{Run: r.EventID, Versions: []string{r.Module + "@" + r.Version}}
		}
		if len(scope.Versions) == 0 {
			return planRun(ctx, cfg, st, qc, r, scope)
		}
		vs, err := reverify.ParseVersions(scope.Versions)
		if err != nil {
			return rejectRun(scope.Run, err), nil
		}
		// The policies as their files are now, like the signers' keys.
		pr.reload(false)
		// The run's size, from this shard's: the others are as large but
		// for the last.
		rv, err := newReverifier(ctx, p, db, cfg.DataDir, scope.Deep, len(vs)*max(1, scope.Shards))
		if errors.Is(err, pipeline.ErrSignerKeys) {
			// A configuration error: retrying would only delay the report
			// that says so. The versions keep their state.
			log.Error("re-verification shard not run", "event_id", r.EventID, "run", scope.Run, "err", err)
			return rejectRun(scope.Run, err), nil
		}
		if err != nil {
			return queue.Result{}, err
		}
		rep, err := reverify.RunShard(ctx, rv, st, vs, reverify.Options{
			Run: scope.Run, EventID: r.EventID, Concurrency: cfg.Reverify.Concurrency,
			Busy:     rv.Busy,
			Progress: throttle(progress, time.Second),
			Changed: func(c reverify.Change) {
				detail, _ := json.Marshal(c)
				if err := qc.Announce(queue.Record{EventID: r.EventID + "/" + c.Key(), Key: c.Key(),
					Result: string(c.Outcome), Request: r, Verdict: detail}); err != nil {
					log.Error("re-verification: announcing a change", "event_id", r.EventID, "key", c.Key(), "err", err)
				}
				log.Warn("re-verification: "+string(c.Outcome), "event_id", r.EventID, "run", scope.Run, "key", c.Key(), "reason", c.Reason)
			},
		})
		if err != nil {
			return queue.Result{}, err
		}
		rep.LogFindings, rep.Warnings = logFindings(rv), rv.Warnings()
		if scope.Shard == 0 {
			for _, w := range rep.Warnings {
				log.Warn("re-verification: "+w, "event_id", r.EventID, "run", scope.Run)
			}
		}
		for _, f := range rep.LogFindings {
			if err := qc.Audit(ctx, queue.AuditRecord{Type: queue.AuditSecurity, EventID: r.EventID, Result: "checksum-log", Error: f}); err != nil {
				log.Error("audit", "event_id", r.EventID, "err", err)
			}
		}
		if err := saveHead(cfg.DataDir, rv); err != nil {
			log.Error("re-verification: saving the log head", "event_id", r.EventID, "err", err)
		}
		data, err := json.Marshal(rep)
		if err != nil {
			return queue.Result{}, err
		}
		counts := make(map[string]int, len(rep.Counts))
		for o, n := range rep.Counts {
			counts[string(o)] = n
		}
		m.Reverified(counts)
		log.Info("re-verification shard done", "event_id", r.EventID, "run", scope.Run, "versions", rep.Versions,
			"quarantined", rep.Counts[reverify.Quarantined], "restored", rep.Counts[reverify.Restored], "ms", rep.DurationMS)
		return queue.Result{Outcome: queue.Done, Name: "reverified", Verdict: data}, nil
	}
}

// planRun lists a run's versions and enqueues its shards. Redelivered, it
// enqueues the same shards again, which the stream deduplicates (their
// nonces are the run and the shard index).
func planRun(ctx context.Context, cfg *config.Config, st *store.Dir, qc *queue.Conn, r queue.Request, scope *queue.ReverifyScope) (queue.Result, error) {
	s := reverify.Scope{All: scope.All, Module: r.Module, Version: r.Version, Since: scope.Since}
	vs, err := reverify.Plan(ctx, st, s)
	if err != nil {
		return rejectRun(scope.Run, err), nil
	}
	shards := reverify.Split(vs, cfg.Reverify.ShardSize)
	pl := plan{Run: scope.Run, Versions: len(vs)}
	for i, shard := range shards {
		id, _, err := qc.Enqueue(ctx, queue.Request{Kind: queue.KindReverify, Source: r.Source,
			Nonce:    fmt.Sprintf("%s/%d", scope.Run, i),
			EventID:  fmt.Sprintf("%s.%d", scope.Run, i),
			Reverify: &queue.ReverifyScope{Run: scope.Run, Deep: scope.Deep, Versions: shard, Shard: i, Shards: len(shards)}})
		if err != nil {
			return queue.Result{}, err
		}
		pl.Shards = append(pl.Shards, id)
	}
	data, err := json.Marshal(pl)
	if err != nil {
		return queue.Result{}, err
	}
	return queue.Result{Outcome: queue.Done, Name: "planned", Verdict: data}, nil
}

// rejectRun is the result of a plan or shard that cannot run: its verdict
// names the run and says why (rejectReason reads it back).
func rejectRun(run string, err error) queue.Result {
	data, _ := json.Marshal(map[string]string{"run": run, "error": err.Error()})
	return queue.Result{Outcome: queue.Reject, Name: "rejected", Verdict: data}
}

// rejectReason is the result of a record that is not done, with why: its
// error, or the one its verdict gives (rejectRun).
func rejectReason(rec queue.Record) string {
	if rec.Error == "" {
		var v struct{ Error string }
		if json.Unmarshal(rec.Verdict, &v) == nil && v.Error != "" {
			return rec.Result + ": " + v.Error
		}
	}
	return rec.Result + errSuffix(rec)
}

// newReverifier starts a run of about versions versions against the
// checksum log's current head, proven consistent with the head the last run
// saw.
func newReverifier(ctx context.Context, p *pipeline.Pipeline, db *checksumDB, dataDir string, deep bool, versions int) (*pipeline.Reverifier, error) {
	o := pipeline.ReverifyOptions{Deep: deep, Versions: versions}
	if db != nil {
		o.Log, o.Verifier = db.log, db.verifier
		prev, err := os.ReadFile(headFile(dataDir))
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		o.PreviousHead = prev
	}
	return p.NewReverifier(ctx, o)
}

func headFile(dataDir string) string { return filepath.Join(dataDir, "reverify", "last-head") }

var headMu sync.Mutex

// saveHead keeps the run's head for the next run to prove against, unless
// the log failed its consistency check (then the old head stays, and every
// run says so until someone looks). Any head a run proved extends the one
// before it, so when shards finish out of order an older one may be kept:
// the next run's proof from it is as strong.
func saveHead(dataDir string, rv *pipeline.Reverifier) error {
	h := rv.Head()
	if h.Signed == nil || len(h.Findings) > 0 {
		return nil
	}
	headMu.Lock()
	defer headMu.Unlock()
	name := headFile(dataDir)
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, h.Signed, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

func logFindings(rv *pipeline.Reverifier) []string {
	var out []string
	for _, f := range rv.Head().Findings {
		out = append(out, f.Reason)
	}
	return out
}

// throttle calls f at most once per d: a heartbeat per version would be a
// message per version.
func throttle(f func(), d time.Duration) func(module.Version, reverify.Outcome) {
	var last atomic.Int64
	return func(module.Version, reverify.Outcome) {
		now := time.Now().UnixNano()
		if l := last.Load(); now-l >= int64(d) && last.CompareAndSwap(l, now) {
			f()
		}
	}
}

func newRunID(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + "-" + time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// scheduleReverify enqueues a run of every version at each time of the
// schedule, and logs its report when it ends. Several serving processes
// enqueue the same run id for the same time, which the stream takes once.
func scheduleReverify(ctx context.Context, cfg *config.Config, qc *queue.Conn, m *metrics.Metrics, log *slog.Logger) {
	if cfg.Reverify.Schedule == "off" {
		return
	}
	sched, err := config.ParseSchedule(cfg.Reverify.Schedule)
	if err != nil {
		log.Error("reverify.schedule", "err", err)
		return
	}
	for {
		next := sched.Next(time.Now().UTC())
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		run := "scheduled-" + next.Format("20060102T150405Z")
		id, dup, err := qc.Enqueue(ctx, planRequest(run, reverify.Scope{All: true}, false, "schedule"))
		if err != nil {
			log.Error("scheduled re-verification not enqueued", "run", run, "err", err)
			continue
		}
		log.Info("scheduled re-verification enqueued", "run", run, "event_id", id, "duplicate", dup)
		if dup {
			continue // another serving process follows it
		}
		go func() {
			rep, err := awaitRun(ctx, qc, run, id, nil)
			if err != nil {
				log.Error("scheduled re-verification", "run", run, "err", err)
				return
			}
			m.RunCompleted(time.Now())
			writeRunReport(cfg.DataDir, rep, log)
		}()
	}
}

// writeRunReport logs a run's report and keeps it in
// <data_dir>/reverify/reports/<run>.json.
func writeRunReport(dataDir string, rep *reverify.ShardReport, log *slog.Logger) {
	counts := make(map[string]int)
	for k, v := range rep.Counts {
		counts[string(k)] = v
	}
	log.Info("re-verification run done", "run", rep.Run, "versions", rep.Versions, "counts", counts, "ms", rep.DurationMS)
	for _, c := range rep.Changes {
		log.Warn("re-verification: "+string(c.Outcome), "run", rep.Run, "key", c.Key(), "reason", c.Reason)
	}
	dir := filepath.Join(dataDir, "reverify", "reports")
	data, err := json.MarshalIndent(rep, "", "  ")
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, rep.Run+".json"), data, 0o644)
	}
	if err != nil {
		log.Error("re-verification report not written", "run", rep.Run, "err", err)
	}
}

// progressMeter prints done/total, rate and ETA on one terminal line. A nil
// meter prints nothing.
type progressMeter struct {
	w     io.Writer
	start time.Time
	total atomic.Int64
	n     atomic.Int64
	last  atomic.Int64 // unix nanoseconds of the last line
}

func (p *progressMeter) setTotal(n int) {
	if p != nil {
		p.total.Store(int64(n))
		p.print(true)
	}
}

func (p *progressMeter) add(n int) {
	if p != nil {
		p.n.Add(int64(n))
		p.print(false)
	}
}

func (p *progressMeter) print(force bool) {
	now := time.Now().UnixNano()
	last := p.last.Load()
	if !force && now-last < int64(200*time.Millisecond) || !p.last.CompareAndSwap(last, now) {
		return
	}
	done, total := p.n.Load(), p.total.Load()
	el := time.Since(p.start).Seconds()
	rate := float64(done) / max(el, 1e-3)
	eta := "?"
	if rate > 0 && total >= done {
		eta = (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r%d/%d versions, %.0f/s, ETA %s   ", done, total, rate, eta)
}

func (p *progressMeter) done() {
	if p != nil {
		p.print(true)
		fmt.Fprintln(p.w)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
