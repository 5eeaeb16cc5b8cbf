package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/sync/singleflight"

	"github.com/modgate/modgate/config"
	"github.com/modgate/modgate/pipeline"
	"github.com/modgate/modgate/queue"
	"github.com/modgate/modgate/server"
	"github.com/modgate/modgate/upstream"
)

// missing answers the proxy's requests for public module versions that are
// not admitted, by upstream.missing: deny (403), enqueue (404, admission
// queued) or passthrough (admitted on the workers while the request waits,
// then served). Concurrent requests for one version share one admission:
// a singleflight here, and the stream's deduplication of the request
// across processes.
type missing struct {
	cfg          *config.Config
	privateGlobs config.Globs // cfg's private patterns, joined
	qc           *queue.Conn
	log          *slog.Logger
	flights      singleflight.Group

	fetcherOnce sync.Once
	fetcher     *upstream.Fetcher
	fetcherErr  error
	newFetcher  func() (*upstream.Fetcher, error)
}

var _ server.Missing = (*missing)(nil)

func newMissing(cfg *config.Config, qc *queue.Conn, log *slog.Logger, newFetcher func() (*upstream.Fetcher, error)) *missing {
	return &missing{cfg: cfg, privateGlobs: config.JoinGlobs(cfg.PrivatePatterns()), qc: qc, log: log, newFetcher: newFetcher}
}

func (g *missing) private(path string) bool {
	return g.privateGlobs.Match(path)
}

func (g *missing) Version(ctx context.Context, m module.Version) error {
	if g.private(m.Path) {
		return &server.Refusal{Status: http.StatusNotFound, Msg: fmt.Sprintf("not found: %s is not admitted (private modules are admitted from their repositories)", m)}
	}
	key := m.String()
	if rec, err := g.qc.Verdict(ctx, key); err == nil && rec.Result == string(pipeline.Rejected) {
		return &server.Refusal{Status: http.StatusForbidden, Msg: fmt.Sprintf("forbidden: %s was refused by modgate: %s", m, verdictReason(rec))}
	}
	switch action := g.cfg.Upstream.MissingAction(m.Path); action {
	case config.MissingEnqueue:
		id, err := g.enqueue(ctx, m)
		if err != nil {
			return err
		}
		return &server.Refusal{Status: http.StatusNotFound, Msg: fmt.Sprintf("not found: %s is not admitted yet; its admission is queued (event %s): retry later", m, id)}
	case config.MissingPassthrough:
		return g.passthrough(ctx, m)
	default:
		return &server.Refusal{Status: http.StatusForbidden, Msg: fmt.Sprintf("forbidden: %s is not admitted by modgate (upstream.missing: %s); ask for its admission", m, action)}
	}
}

func (g *missing) enqueue(ctx context.Context, m module.Version) (string, error) {
	id, _, err := g.qc.Enqueue(ctx, queue.Request{Kind: queue.KindAdmit, Module: m.Path, Version: m.Version, Source: "proxy"})
	return id, err
}

// passthrough enqueues the admission and waits for its verdict, once for
// all concurrent requests of the version; each request waits at most its
// own context and upstream.wait.
func (g *missing) passthrough(ctx context.Context, m module.Version) error {
	ch := g.flights.DoChan(m.String(), func() (any, error) {
		fctx, cancel := context.WithTimeout(context.Background(), g.cfg.Upstream.Wait)
		defer cancel()
		id, err := g.enqueue(fctx, m)
		if err != nil {
			return nil, err
		}
		g.log.Info("passthrough admission", "event_id", id, "module", m.Path, "version", m.Version)
		return g.qc.WaitVerdict(fctx, id)
	})
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	if errors.Is(res.Err, context.DeadlineExceeded) {
		return &server.Refusal{Status: http.StatusGatewayTimeout, Msg: fmt.Sprintf("gateway timeout: the admission of %s is still running; retry later", m)}
	}
	if res.Err != nil {
		return res.Err
	}
	rec := res.Val.(queue.Record)
	switch {
	case rec.Result == string(pipeline.Admitted) || rec.Result == string(pipeline.Duplicate):
		return nil
	case rec.Result == string(pipeline.Rejected):
		return &server.Refusal{Status: http.StatusForbidden, Msg: fmt.Sprintf("forbidden: %s was refused by modgate: %s", m, verdictReason(rec))}
	default:
		return &server.Refusal{Status: http.StatusBadGateway, Msg: fmt.Sprintf("bad gateway: the admission of %s failed: %s%s", m, rec.Result, errSuffix(rec))}
	}
}

// List answers @v/list (and @latest) of a public module with no admitted
// version: deny refuses; enqueue queues the admission of upstream's latest
// version and answers 404; passthrough lists upstream's versions, each of
// which is admitted when asked for.
func (g *missing) List(ctx context.Context, path string) ([]string, error) {
	if g.private(path) {
		return nil, &server.Refusal{Status: http.StatusNotFound, Msg: "not found: module " + path + " has no admitted versions"}
	}
	action := g.cfg.Upstream.MissingAction(path)
	if action == config.MissingDeny {
		return nil, &server.Refusal{Status: http.StatusForbidden, Msg: fmt.Sprintf("forbidden: module %s has no versions admitted by modgate (upstream.missing: deny)", path)}
	}
	f, err := g.getFetcher()
	if err != nil {
		return nil, err
	}
	vs, err := f.List(ctx, path)
	if err != nil {
		if upstream.IsNotFound(err) {
			return nil, &server.Refusal{Status: http.StatusNotFound, Msg: "not found: module " + path + " is not on the upstream proxy either"}
		}
		return nil, err
	}
	if action == config.MissingPassthrough {
		return vs, nil
	}
	v := server.Latest(vs)
	if v == "" {
		return nil, &server.Refusal{Status: http.StatusNotFound, Msg: "not found: module " + path + " has no versions upstream"}
	}
	id, err := g.enqueue(ctx, module.Version{Path: path, Version: v})
	if err != nil {
		return nil, err
	}
	return nil, &server.Refusal{Status: http.StatusNotFound, Msg: fmt.Sprintf("not found: module %s has no admitted versions; the admission of %s is queued (event %s): retry later", path, v, id)}
}

func (g *missing) getFetcher() (*upstream.Fetcher, error) {
	g.fetcherOnce.Do(func() { g.fetcher, g.fetcherErr = g.newFetcher() })
	return g.fetcher, g.fetcherErr
}
