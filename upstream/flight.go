package upstream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
)

// flight is one download that concurrent callers share.
type flight struct {
	key    module.Version
	done   chan struct{} // closed when mod and err are set
	cancel context.CancelFunc

	// Under Fetcher.mu:
	waiters  int  // callers that have not left
	finished bool // done is closed

	mod *Module // the shared result; its zip is removed when the last caller leaves
	err error

	mu      sync.Mutex
	current string // the check under way, for a caller that gives up
	links   int    // zip links handed out
}

func (c *flight) setStage(s string) { c.mu.Lock(); c.current = s; c.mu.Unlock() }
func (c *flight) stage() string     { c.mu.Lock(); defer c.mu.Unlock(); return c.current }

// join adds the caller to m's flight, starting one if none is under way.
// The download runs on a context of its own, which keeps ctx's values but
// ends only when every caller has left.
func (f *Fetcher) join(ctx context.Context, m module.Version) *flight {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.flights[m]
	if c == nil {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &flight{key: m, done: make(chan struct{}), cancel: cancel, current: "info"}
		f.flights[m] = c
		go f.run(fctx, c)
	}
	c.waiters++
	return c
}

func (f *Fetcher) run(ctx context.Context, c *flight) {
	start := time.Now()
	mod, err := f.fetch(ctx, c)
	if err == nil {
		f.opts.Logger.Info("fetched and proven", "module", mod.Version.Path, "version", mod.Version.Version,
			"zip", mod.ZipHash, "mod", mod.ModHash, "proxy", mod.Proxy, "took", time.Since(start).Round(time.Millisecond))
	}
	f.mu.Lock()
	c.mod, c.err = mod, err
	c.finished = true
	if f.flights[c.key] == c {
		delete(f.flights, c.key)
	}
	orphan := c.waiters == 0
	close(c.done)
	f.mu.Unlock()
	c.cancel()
	if orphan {
		c.cleanup()
	}
}

// leave removes a caller. The last one to leave cancels a download still
// under way, or removes the finished download's zip.
func (f *Fetcher) leave(c *flight) {
	f.mu.Lock()
	c.waiters--
	last := c.waiters == 0
	if last && f.flights[c.key] == c {
		delete(f.flights, c.key) // a later caller starts afresh
	}
	finished := c.finished
	f.mu.Unlock()
	if !last {
		return
	}
	c.cancel()
	if finished {
		c.cleanup()
	}
}

func (c *flight) cleanup() {
	if c.mod != nil {
		os.Remove(c.mod.ZipPath)
	}
}

// claim gives a caller its own copy of the result: a hard link to the
// shared zip (a copy where links fail), and its own byte slices.
func (c *flight) claim() (*Module, error) {
	if c.err != nil {
		return nil, c.err
	}
	mod := *c.mod
	mod.Info.Raw = bytes.Clone(mod.Info.Raw)
	mod.GoMod = bytes.Clone(mod.GoMod)
	mod.DBLines = append([]string(nil), mod.DBLines...)
	c.mu.Lock()
	c.links++
	name := fmt.Sprintf("%s-%d.zip", strings.TrimSuffix(c.mod.ZipPath, ".zip"), c.links)
	c.mu.Unlock()
	if err := linkOrCopy(c.mod.ZipPath, name); err != nil {
		return nil, &Error{Module: mod.Version, Check: "zip", Err: &localError{err}}
	}
	mod.ZipPath = name
	return &mod, nil
}

func linkOrCopy(old, new string) error {
	if os.Link(old, new) == nil {
		return nil
	}
	src, err := os.Open(old)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(new, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(new)
	}
	return err
}
