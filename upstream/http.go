package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// sink receives a response body; reset discards what a failed attempt
// wrote.
type sink interface {
	io.Writer
	reset() error
}

type bufSink struct{ bytes.Buffer }

func (b *bufSink) reset() error { b.Reset(); return nil }

type fileSink struct{ f *os.File }

func (s fileSink) Write(p []byte) (int, error) { return s.f.Write(p) }

func (s fileSink) reset() error {
	if err := s.f.Truncate(0); err != nil {
		return err
	}
	_, err := s.f.Seek(0, io.SeekStart)
	return err
}

// download fetches rel (a path under each proxy's base URL) into dst, at
// most limit bytes, walking the proxy list as the go command does, and
// retries a pass that ended in a transient failure. check, if set, vets
// each proxy's answer: an error from it counts against that proxy. It
// returns the proxy that answered.
func (f *Fetcher) download(ctx context.Context, rel string, limit int64, dst sink, check func() error) (*proxy, error) {
	for retry := 0; ; retry++ {
		p, err := f.pass(ctx, rel, limit, dst, check)
		if err == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var r *retryable
		if !errors.As(err, &r) {
			return nil, err
		}
		if retry >= f.opts.Retries {
			if retry > 0 {
				err = fmt.Errorf("%w (gave up after %d attempts)", err, retry+1)
			}
			return nil, err
		}
		wait := f.opts.Backoff(retry)
		f.opts.Logger.Warn("upstream proxy failed; retrying", "file", rel, "retry", retry+1, "of", f.opts.Retries, "wait", wait, "err", err.Error())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// pass tries each proxy in turn, as cmd/go/internal/modfetch.TryProxies
// does: after a 404 or 410 the next one; after any other error the next
// one only if the proxy is followed by '|'. The error returned is the most
// useful one: a transient failure, else another failure (the last), else
// every "not found", joined.
//
// Unlike the go command, a transient failure outranks a permanent one from
// a later proxy (with '|'), so that a flaky primary proxy leads to a retry
// rather than a rejection; and "direct" is not a source but "not found".
func (f *Fetcher) pass(ctx context.Context, rel string, limit int64, dst sink, check func() error) (*proxy, error) {
	var best error
	var notFound []string
	for i := range f.proxies {
		p := &f.proxies[i]
		var err error
		switch p.kind {
		case kindDirect:
			err = notFoundf("GOPROXY entry \"direct\" (download from version control) is not supported: modgate fetches public modules from a module proxy only")
		case kindOff:
			err = notFoundf("module downloads disabled by GOPROXY=off")
		default:
			err = f.get(ctx, p, rel, limit, dst)
			if err == nil && check != nil {
				err = check()
				if err != nil {
					err = fmt.Errorf("%s/%s: %w", p.shown, rel, err)
				}
			}
		}
		if err == nil {
			return p, nil
		}
		var local *localError
		if errors.As(err, &local) || ctx.Err() != nil {
			return nil, err
		}
		isNotFound := errors.Is(err, fs.ErrNotExist)
		var r *retryable
		switch {
		case isNotFound:
			notFound = append(notFound, err.Error())
		case best == nil || !errors.As(best, &r):
			best = err
		}
		if !p.fallBack && !isNotFound {
			break
		}
	}
	if best != nil {
		return nil, best
	}
	return nil, notFoundf("%s", strings.Join(notFound, "; "))
}

// notFoundf is an error satisfying errors.Is(err, fs.ErrNotExist).
func notFoundf(format string, args ...any) error {
	return class(fs.ErrNotExist, fmt.Errorf(format, args...))
}

// get makes one request for p's base URL + "/" + rel and copies the body to
// dst. A request that makes no progress for Timeout is abandoned.
func (f *Fetcher) get(ctx context.Context, p *proxy, rel string, limit int64, dst sink) error {
	shown := p.shown + "/" + rel
	if err := dst.reset(); err != nil {
		return &localError{err}
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stalled atomic.Bool
	watchdog := time.AfterFunc(f.opts.Timeout, func() { stalled.Store(true); cancel() })
	defer watchdog.Stop()

	req, err := http.NewRequestWithContext(rctx, http.MethodGet, p.url+"/"+rel, nil)
	if err != nil {
		return fmt.Errorf("%w: GET %s: %s", ErrRefused, shown, scrub(err.Error(), p.secrets))
	}
	req.Header.Set("User-Agent", "modgate-upstream")
	f.opts.Logger.Debug("upstream GET", "url", shown)
	resp, err := f.opts.HTTPClient.Do(req)
	if err != nil {
		return f.transportError(ctx, p, shown, err, stalled.Load())
	}
	defer resp.Body.Close()
	watchdog.Reset(f.opts.Timeout)

	if resp.StatusCode != http.StatusOK {
		msg := fmt.Sprintf("GET %s: %s", shown, resp.Status)
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		if s := oneLine(string(snippet)); s != "" {
			msg += ": " + fmt.Sprintf("%q", s)
		}
		err := errors.New(scrub(msg, p.secrets))
		switch c := resp.StatusCode; {
		case c == http.StatusNotFound || c == http.StatusGone:
			return class(fs.ErrNotExist, err)
		case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
			return &retryable{err}
		default:
			return class(ErrRefused, err)
		}
	}
	if resp.ContentLength > limit {
		return fmt.Errorf("%w: GET %s: %d bytes, over the %d-byte limit", ErrTooLarge, shown, resp.ContentLength, limit)
	}
	body := &progress{r: io.LimitReader(resp.Body, limit+1), watchdog: watchdog, timeout: f.opts.Timeout}
	w := &errWriter{w: dst}
	n, err := io.Copy(w, body)
	switch {
	case w.err != nil:
		return &localError{fmt.Errorf("writing %s: %w", shown, w.err)}
	case err != nil:
		return f.transportError(ctx, p, shown, err, stalled.Load())
	case n > limit:
		return fmt.Errorf("%w: GET %s: over the %d-byte limit", ErrTooLarge, shown, limit)
	}
	return nil
}

// transportError classifies a failed request or body read: the caller's
// context ending is returned as is; anything else is the network or the
// server, worth a retry.
func (f *Fetcher) transportError(ctx context.Context, p *proxy, shown string, err error, stalled bool) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if stalled {
		return &retryable{fmt.Errorf("GET %s: no progress for %v", shown, f.opts.Timeout)}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its message repeats the URL, with the user name
	}
	return &retryable{fmt.Errorf("GET %s: %s", shown, scrub(err.Error(), p.secrets))}
}

// progress resets the watchdog whenever bytes arrive.
type progress struct {
	r        io.Reader
	watchdog *time.Timer
	timeout  time.Duration
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.watchdog.Reset(p.timeout)
	}
	return n, err
}

// errWriter remembers its writer's error, which io.Copy does not tell
// apart from the reader's.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}
