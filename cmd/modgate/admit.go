package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/modgate/modgate/config"
	"github.com/modgate/modgate/pipeline"
	"github.com/modgate/modgate/store"
)

func cmdAdmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admit", stderr)
	cfgFile := fs.String("config", "", "configuration `file` (required)")
	repo := fs.String("repo", "", "repository URL or local path, as allowed by the configuration")
	tag := fs.String("tag", "", "tag to admit, e.g. v1.2.3 or sub/dir/v1.2.3")
	public := fs.String("module", "", "admit a public module `PATH@VERSION` from the upstream proxy instead, proven against the public checksum database")
	asJSON := fs.Bool("json", false, "print the verdict as JSON on stdout")
	verbose := fs.Bool("v", false, "log each stage to stderr")
	enqueue := fs.Bool("enqueue", false, "hand the admission to the workers of a running modgate serve (over NATS) instead of running it here")
	wait := fs.Bool("wait", false, "with --enqueue: wait for the verdict and exit as an in-process admission would")
	timeout := fs.Duration("timeout", 10*time.Minute, "with --wait: how long to wait for the verdict")
	natsURL := fs.String("nats-url", "", "with --enqueue: NATS `url` of modgate serve (default: nats.url, else nats://<nats.listen>)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var modPath, modVersion string
	if *public != "" {
		var ok bool
		modPath, modVersion, ok = strings.Cut(*public, "@")
		if !ok || *repo != "" || *tag != "" {
			return usageErr("admit: --module PATH@VERSION goes without --repo and --tag")
		}
	}
	if *cfgFile == "" || (*public == "" && (*repo == "" || *tag == "")) {
		return usageErr("admit: --config, and --repo and --tag (or --module PATH@VERSION), are required")
	}
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		return err
	}
	if *wait && !*enqueue {
		return usageErr("admit: --wait goes with --enqueue")
	}
	if *natsURL != "" {
		cfg.NATS.URL = *natsURL
	}
	if *enqueue {
		return enqueueAdmit(ctx, cfg, admitTarget{repo: *repo, tag: *tag, module: modPath, version: modVersion}, *wait, *timeout, *asJSON, stdout, stderr)
	}
	st, err := store.Open(cfg.Store.Dir)
	if err != nil {
		return err
	}
	level := slog.LevelError + 1 // problems are printed as lines below
	if *verbose {
		level = slog.LevelInfo
	}
	db, err := openChecksumDB(cfg)
	if err != nil {
		return err
	}
	signer, err := loadSigner(cfg)
	if err != nil {
		return err
	}
	opts := pipeline.Options{Store: st, Logger: newLogger(stderr, level), Signer: signer, Version: Version}
	if db != nil {
		defer db.log.Close()
		opts.ChecksumLog = db.log
	}
	p, err := newPipeline(cfg, opts, stderr)
	if err != nil {
		return err
	}
	v := p.Admit(ctx, pipeline.Request{Repo: *repo, Tag: *tag, Module: modPath, Version: modVersion, Source: "cli"})
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	for _, line := range v.Lines() {
		fmt.Fprintln(stderr, line)
	}
	printPending(v, stderr)
	switch v.Result {
	case pipeline.Admitted, pipeline.Duplicate:
		if !*asJSON {
			fmt.Fprintf(stdout, "%s %s@%s %s\n", v.Result, v.Module, v.Version, v.Hashes.Zip)
		}
		return nil
	case pipeline.Rejected:
		return &exitError{code: 1}
	default:
		return &exitError{code: 2}
	}
}

// printPending names the public dependencies not yet admitted, which a
// build through modgate will need.
func printPending(v *pipeline.Verdict, stderr io.Writer) {
	for _, d := range v.Dependencies {
		if d.Status != "admitted" {
			fmt.Fprintf(stderr, "dependency %s@%s: %s%s (modgate admit --module %s@%s)\n", d.Path, d.Version, d.Status, reasonSuffix(d.Reason), d.Path, d.Version)
		}
	}
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

// newPipeline builds the pipeline and loads the configured policies; a
// policy set that does not compile is a start-up error.
func newPipeline(cfg *config.Config, opts pipeline.Options, stderr io.Writer) (*pipeline.Pipeline, error) {
	p, err := pipeline.New(cfg, opts)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("config: %w", err)}
	}
	if cfg.Policies.Dir != "" {
		set, err := loadPolicies(cfg.Policies.Dir, stderr)
		if err != nil {
			return nil, &exitError{code: 2, err: fmt.Errorf("policies.dir: %s does not compile", cfg.Policies.Dir)}
		}
		p.SetPolicies(set)
	}
	return p, nil
}
