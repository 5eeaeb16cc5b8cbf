package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/modgate/modgate/config"
	"github.com/modgate/modgate/metrics"
	"github.com/modgate/modgate/pipeline"
	"github.com/modgate/modgate/policies"
	"github.com/modgate/modgate/queue"
	"github.com/modgate/modgate/sbom"
	"github.com/modgate/modgate/server"
	"github.com/modgate/modgate/store"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	cfgFile := fs.String("config", "", "configuration `file` (default: built-in defaults, data in ./data)")
	listen := fs.String("listen", "", "HTTP listen `address`, overriding server.listen")
	natsURL := fs.String("nats-url", "", "external NATS `url`, overriding nats.url (then no server is embedded)")
	natsListen := fs.String("nats-listen", "", "embedded NATS client `address`, overriding nats.listen (\"none\": in-process only)")
	workersOnly := fs.Bool("workers-only", false, "run workers only: no HTTP, no checksum database (connects to the NATS of a running modgate serve)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (go tool pprof) to `file` until the process exits")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--cpuprofile: %w", err)}
		}
		defer stop()
	}
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Server.Listen = *listen
	}
	if *natsURL != "" {
		cfg.NATS.URL = *natsURL
	}
	if *natsListen != "" {
		cfg.NATS.Listen = *natsListen
	}
	if *workersOnly && cfg.NATS.URL == "" {
		// The serving process embeds the server; workers join it.
		cfg.NATS.URL = "nats://" + cfg.NATS.Listen
	}
	log := newLogger(stderr, slog.LevelInfo)
	st, err := store.Open(cfg.Store.Dir)
	if err != nil {
		return err
	}

	// The checksum log has one writer: the serving process. Workers-only
	// processes append through it, over NATS.
	var db *checksumDB
	if !*workersOnly {
		if db, err = openChecksumDB(cfg); err != nil {
			return err
		}
		if db != nil {
			defer db.log.Close()
			logRecovery(log, db)
		} else {
			log.Warn("no checksum database configured (checksum_db.key_file): clients must set GONOSUMDB for private modules")
		}
	}

	qcfg := queueConfig(cfg)
	// Re-verification proves records of the checksum log, which only the
	// serving process holds.
	qcfg.NoReverify = *workersOnly && cfg.ChecksumDB.Enabled()
	qc, err := queue.Start(ctx, qcfg, log)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer qc.Close()

	signer, err := loadSigner(cfg)
	if err != nil {
		return err
	}
	opts := pipeline.Options{Store: st, Logger: log, Signer: signer, Version: Version}
	switch {
	case db != nil:
		opts.ChecksumLog = db.log
		stopLogService, err := queue.ServeChecksumLog(qc, db.log)
		if err != nil {
			return err
		}
		defer stopLogService()
	case *workersOnly && cfg.ChecksumDB.Enabled():
		opts.ChecksumLog = queue.RemoteChecksumLog(qc)
	}
	p, err := newPipeline(cfg, opts, stderr)
	if err != nil {
		return err
	}
	p.Prepare()
	m := metrics.New(func(ctx context.Context) (int, error) {
		d, err := qc.QueueDepth(ctx)
		return d.Pending, err
	})

	g, gctx := errgroup.WithContext(ctx)
	pr := newPolicyReloader(cfg.Policies.Dir, p, log)
	if pr != nil {
		g.Go(func() error { pr.watch(gctx); return nil })
	}
	// Workers run until ctx ends; they then stop taking jobs and finish or
	// hand back what they hold.
	m.WatchKeys(p.KeyExpiries)
	reverifyJobs := reverifyHandler(cfg, p, pr, st, db, qc, m, log)
	admitJobs := admitHandler(cfg, p, pr, qc, m, log)
	g.Go(func() error {
		return qc.RunWorkers(ctx, func(ctx context.Context, r queue.Request, progress func()) (queue.Result, error) {
			if r.Kind == queue.KindReverify {
				return reverifyJobs(ctx, r, progress)
			}
			return admitJobs(ctx, r, progress)
		})
	})
	if !*workersOnly {
		g.Go(func() error { scheduleReverify(gctx, cfg, qc, m, log); return nil })
	}

	if *workersOnly {
		fmt.Fprintf(stdout, "modgate workers (%d) on %s\n", cfg.NATS.Workers, qc.URL())
		log.Info("workers only", "nats", qc.URL(), "workers", cfg.NATS.Workers)
		return g.Wait()
	}

	ln, err := listenHTTP(cfg.Server)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           routes(cfg, st, db, qc, m, signer, newMissing(cfg, qc, log, p.Upstream), log),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.Server.ReadTimeout,
		WriteTimeout:      cfg.Server.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if cfg.Server.TLSCert != "" {
		scheme = "https"
	}
	// The address lines are for people and scripts (tests read them to
	// find a port chosen with :0).
	fmt.Fprintf(stdout, "modgate serving %s on %s://%s/ (GOPROXY=%s://%s)\n", cfg.Store.Dir, scheme, ln.Addr(), scheme, ln.Addr())
	if db != nil {
		fmt.Fprintf(stdout, "checksum database %s (GOSUMDB=%s)\n", db.name, db.vkey)
	}
	fmt.Fprintf(stdout, "nats %s, %d workers\n", qc.URL(), cfg.NATS.Workers)
	log.Info("serving", "addr", ln.Addr().String(), "store", cfg.Store.Dir, "config", cfg.File(), "nats", qc.URL())

	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		// Stop taking requests first; in-flight requests finish.
		log.Info("shutting down")
		shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return srv.Shutdown(shutCtx)
	})
	return g.Wait()
}

func queueConfig(cfg *config.Config) queue.Config {
	qcfg := queue.Config{
		URL: cfg.NATS.URL, Creds: cfg.NATS.Creds,
		TLSCA: cfg.NATS.TLSCA, TLSCert: cfg.NATS.TLSCert, TLSKey: cfg.NATS.TLSKey,
		StoreDir: filepath.Join(cfg.DataDir, "nats"), Listen: cfg.NATS.Listen,
		Workers: cfg.NATS.Workers, ReverifyWorkers: cfg.Reverify.Workers,
		MaxDeliver: cfg.NATS.MaxDeliver, DedupWindow: cfg.NATS.DedupWindow,
	}
	if qcfg.Listen == "none" {
		qcfg.Listen, qcfg.NoListen = "", true
	}
	return qcfg
}

// listenHTTP listens on the configured address, with TLS (and client
// certificates) when configured.
func listenHTTP(c config.ServerConfig) (net.Listener, error) {
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, err
	}
	if c.TLSCert == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("server.tls_cert: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCA != "" {
		pem, err := os.ReadFile(c.ClientCA)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("server.client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			ln.Close()
			return nil, fmt.Errorf("server.client_ca: no certificates in %s", c.ClientCA)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tls.NewListener(ln, tc), nil
}

// routes is the HTTP surface of modgate serve.
func routes(cfg *config.Config, st *store.Dir, db *checksumDB, qc *queue.Conn, m *metrics.Metrics, signer *sbom.Signer, miss server.Missing, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := qc.QueueDepth(ctx); err != nil {
			http.Error(w, "nats not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", m.Handler())
	if signer != nil {
		if err := mountCosignKeys(mux, signer); err != nil {
			log.Error("cosign public keys not served", "err", err)
		}
	}
	mux.Handle("/hooks/", webhookHandler(cfg, qc, m, log))
	mux.Handle("/", server.New(st, server.Options{Logger: log, Missing: miss}))
	if db != nil {
		db.mount(mux)
	}
	return mux
}

// admitHandler runs the pipeline for each job and maps its verdict to the
// queue's outcome: admitted and duplicate are done, rejected is permanent,
// error is retried.
func admitHandler(cfg *config.Config, p *pipeline.Pipeline, pr *policyReloader, qc *queue.Conn, m *metrics.Metrics, log *slog.Logger) queue.Handler {
	return func(ctx context.Context, r queue.Request, progress func()) (queue.Result, error) {
		if r.Attempt > 1 {
			m.Redelivered()
		}
		if r.Kind != queue.KindAdmit {
			return queue.Result{Outcome: queue.Reject, Name: "unsupported"}, nil
		}
		pr.reload(false)
		v := p.Admit(ctx, pipeline.Request{Repo: r.Repo, Tag: r.Tag, Module: r.Module, Version: r.Version, EventID: r.EventID, Source: r.Source})
		if v.Result == pipeline.Admitted || v.Result == pipeline.Duplicate {
			enqueueDependencies(ctx, qc, cfg, v, r.EventID, log)
		}
		m.Verdict(v)
		data, err := json.Marshal(v)
		if err != nil {
			return queue.Result{}, err
		}
		res := queue.Result{Name: string(v.Result), Verdict: data}
		if v.Module != "" {
			res.Key = v.Module + "@" + v.Version
		}
		for _, prob := range v.Problems {
			if prob.Security {
				rec := queue.AuditRecord{Type: queue.AuditSecurity, EventID: r.EventID, Key: res.Key,
					Result: prob.Check, Error: prob.Reason, Detail: data}
				if err := qc.Audit(ctx, rec); err != nil {
					log.Error("audit", "event_id", r.EventID, "err", err)
				}
			}
		}
		switch v.Result {
		case pipeline.Admitted, pipeline.Duplicate:
			res.Outcome = queue.Done
		case pipeline.Rejected:
			res.Outcome = queue.Reject
		default:
			res.Outcome = queue.Retry
			reason := "transient failure"
			if len(v.Problems) > 0 {
				reason = v.Problems[0].Check + ": " + v.Problems[0].Reason
			}
			return res, errors.New(reason)
		}
		return res, nil
	}
}

// enqueueDependencies asks for the admission of every public dependency of
// an admitted version that is not admitted yet, so that a build of it
// through modgate resolves, and marks in the verdict those refused before.
func enqueueDependencies(ctx context.Context, qc *queue.Conn, cfg *config.Config, v *pipeline.Verdict, eventID string, log *slog.Logger) {
	if cfg.Upstream.Dependencies != config.DependenciesEnqueue {
		return
	}
	// Concurrently: a module can name hundreds of versions in its go.sum,
	// and each is a verdict lookup and a publish (round trips to NATS).
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range v.Dependencies {
		d := &v.Dependencies[i]
		if d.Status != "pending" {
			continue
		}
		g.Go(func() error {
			key := d.Path + "@" + d.Version
			if rec, err := qc.Verdict(gctx, key); err == nil && rec.Result == string(pipeline.Rejected) {
				d.Status, d.Reason = "refused", verdictReason(rec)
				return nil
			}
			id, _, err := qc.Enqueue(gctx, queue.Request{Kind: queue.KindAdmit, Module: d.Path, Version: d.Version,
				Source: "dependency-of:" + v.Module + "@" + v.Version})
			if err != nil {
				log.Error("enqueueing a dependency", "event_id", eventID, "dependency", key, "err", err)
				return nil
			}
			d.Reason = "admission enqueued: event " + id
			return nil
		})
	}
	g.Wait()
}

// verdictReason is the first problem of a recorded verdict.
func verdictReason(rec queue.Record) string {
	var v pipeline.Verdict
	if json.Unmarshal(rec.Verdict, &v) == nil && len(v.Problems) > 0 {
		return v.Problems[0].Check + ": " + v.Problems[0].Reason
	}
	return rec.Result
}

// policyReloader loads a policy directory into a pipeline again when its
// files change: polled, on SIGHUP (watch), and before each admission and
// each re-verification shard (reload), so that a policy edited just
// before a run or an admission applies to it. A set that does not compile
// is refused and the old one kept, logged once per change. A nil
// policyReloader (no policies.dir) does nothing.
type policyReloader struct {
	dir string
	p   *pipeline.Pipeline
	log *slog.Logger

	mu   sync.Mutex
	last string // dirStamp of the last set loaded or refused
}

func newPolicyReloader(dir string, p *pipeline.Pipeline, log *slog.Logger) *policyReloader {
	if dir == "" {
		return nil
	}
	return &policyReloader{dir: dir, p: p, log: log, last: dirStamp(dir)}
}

// reload loads the directory if a file in it changed since the last load,
// or always with force.
func (r *policyReloader) reload(force bool) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := dirStamp(r.dir)
	if s == r.last && !force {
		return
	}
	r.last = s
	set, err := policies.Load(r.dir)
	if err != nil {
		r.log.Error("policies not reloaded: the new set does not compile; keeping the old one", "dir", r.dir, "err", err)
		return
	}
	r.p.SetPolicies(set)
	r.log.Info("policies reloaded", "dir", r.dir, "digest", set.Digest(), "files", len(set.Files()))
}

// watch reloads every 2 seconds if a file changed, and on SIGHUP.
func (r *policyReloader) watch(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.reload(true)
		case <-tick.C:
			r.reload(false)
		}
	}
}

// dirStamp changes when a file in dir is added, removed or modified.
func dirStamp(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	h := ""
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			h += fmt.Sprintf("%s %d %d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return h
}

// startCPUProfile profiles the process into file until stop.
func startCPUProfile(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
