package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/modgate/modgate/config"
	"github.com/modgate/modgate/pipeline"
	"github.com/modgate/modgate/queue"
)

// connectQueue connects a client command to the NATS of a running
// `modgate serve` (or the configured cluster).
func connectQueue(ctx context.Context, cfg *config.Config, stderr io.Writer) (*queue.Conn, error) {
	qcfg := queueConfig(cfg)
	if qcfg.URL == "" {
		if qcfg.NoListen {
			return nil, usageErr("nats.listen is \"none\": no other process can reach modgate serve's NATS")
		}
		qcfg.URL = "nats://" + qcfg.Listen
	}
	qc, err := queue.Start(ctx, qcfg, newLogger(stderr, slog.LevelWarn))
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("connecting to NATS at %s (is modgate serve running?): %w", qcfg.URL, err)}
	}
	return qc, nil
}

// dialQueue loads the configuration and connects to its NATS, or to
// natsURL when given.
func dialQueue(ctx context.Context, cfgFile, natsURL string, stderr io.Writer) (*queue.Conn, error) {
	cfg, err := loadConfig(cfgFile)
	if err != nil {
		return nil, err
	}
	if natsURL != "" {
		cfg.NATS.URL = natsURL
	}
	return connectQueue(ctx, cfg, stderr)
}

// enqueueAdmit publishes the request and, with wait, prints the verdict
// when a worker has reached one.
// admitTarget is what `modgate admit` was asked to admit: a tag of a
// repository, or a public module version.
type admitTarget struct{ repo, tag, module, version string }

func enqueueAdmit(ctx context.Context, cfg *config.Config, t admitTarget, wait bool, timeout time.Duration, asJSON bool, stdout, stderr io.Writer) error {
	qc, err := connectQueue(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer qc.Close()
	// A person asking again is a new event (after a policy fix, say), not a
	// duplicate of an earlier request for the same tag: the nonce keeps it
	// out of the dedup window. Webhook redeliveries carry none.
	req := queue.Request{Kind: queue.KindAdmit, Module: t.module, Version: t.version, Source: "cli",
		Nonce: time.Now().UTC().Format(time.RFC3339Nano)}
	if t.module == "" {
		norm, err := config.NormalizeRepo(t.repo)
		if err != nil {
			return usageErr("admit: --repo: %v", err)
		}
		req.Repo, req.Tag = norm, t.tag
	}
	id, dup, err := qc.Enqueue(ctx, req)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	note := ""
	if dup {
		note = " (duplicate of a request already queued)"
	}
	fmt.Fprintf(stderr, "enqueued event %s%s\n", id, note)
	if !wait {
		fmt.Fprintln(stdout, id)
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rec, err := qc.WaitVerdict(wctx, id)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("waiting for the verdict of %s: %w", id, err)}
	}
	var v pipeline.Verdict
	if len(rec.Verdict) > 0 {
		if err := json.Unmarshal(rec.Verdict, &v); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rec)
	} else if v.Hashes != nil {
		fmt.Fprintf(stdout, "%s %s@%s %s\n", v.Result, v.Module, v.Version, v.Hashes.Zip)
	}
	for _, line := range v.Lines() {
		fmt.Fprintln(stderr, line)
	}
	printPending(&v, stderr)
	switch {
	case rec.Error != "":
		fmt.Fprintf(stderr, "%s: given up after %d attempts: %s\n", id, rec.Deliveries, rec.Error)
		return &exitError{code: 2}
	case v.Result == pipeline.Admitted || v.Result == pipeline.Duplicate:
		return nil
	case v.Result == pipeline.Rejected:
		return &exitError{code: 1}
	}
	return &exitError{code: 2}
}

func cmdVerdict(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verdict", stderr)
	cfgFile := fs.String("config", "", "configuration `file`")
	natsURL := fs.String("nats-url", "", "NATS `url` of modgate serve (default: nats.url, else nats://<nats.listen>)")
	var key string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		key, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !strings.Contains(key, "@") {
		return usageErr("usage: modgate verdict MODULE@VERSION [--config FILE]")
	}
	qc, err := dialQueue(ctx, *cfgFile, *natsURL, stderr)
	if err != nil {
		return err
	}
	defer qc.Close()
	rec, err := qc.Verdict(ctx, key)
	if errors.Is(err, queue.ErrNotFound) {
		return &exitError{code: 1, err: fmt.Errorf("no verdict for %s", key)}
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rec)
}

func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit", stderr)
	cfgFile := fs.String("config", "", "configuration `file`")
	natsURL := fs.String("nats-url", "", "NATS `url` of modgate serve (default: nats.url, else nats://<nats.listen>)")
	since := fs.String("since", "", "only records after this: a duration (24h) or an RFC 3339 time")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var from time.Time
	if *since != "" {
		if d, err := time.ParseDuration(*since); err == nil {
			from = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, *since); err == nil {
			from = t
		} else {
			return usageErr("audit: --since %q: want a duration (24h) or an RFC 3339 time", *since)
		}
	}
	qc, err := dialQueue(ctx, *cfgFile, *natsURL, stderr)
	if err != nil {
		return err
	}
	defer qc.Close()
	enc := json.NewEncoder(stdout)
	return qc.ReadAudit(ctx, from, func(rec queue.AuditRecord) error { return enc.Encode(rec) })
}
