package depsum

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
)

// SumDBOptions configures a [SumDB]. [Discover] fills in Name, Key and URL
// the way the go command would from GOPROXY and GOSUMDB.
type SumDBOptions struct {
	// Name is the database's name, e.g. "sum.golang.org". Optional: it must
	// equal the name in Key, which is used when Name is empty.
	Name string
	// Key is the database's note verifier key, "<name>+<hash>+<keydata>"
	// (for sum.golang.org, [SumGolangOrgKey]). Required.
	Key string
	// URL is the base URL that serves /lookup/, /tile/ and /latest, e.g.
	// "https://proxy.golang.org/sumdb/sum.golang.org". Required; http or
	// https. It may hold credentials: they are never put in messages.
	URL string
	// CacheDir holds verified tiles and lookups, and "<name>/latest": the
	// last signed tree head verified, updated by atomic compare-and-swap
	// (safe for several processes sharing the directory). Because it
	// survives restarts, a database that later presents a tree inconsistent
	// with it (a fork, or a rollback to another history) is caught. Required.
	CacheDir string
	// HTTPClient makes the requests. Default: a client with Timeout as its
	// timeout.
	HTTPClient *http.Client
	// Timeout bounds each request, whatever HTTPClient's own timeout.
	// Default: 30s.
	Timeout time.Duration
	// Logger receives the proof when the database misbehaves (it is too long
	// for an error message) and cache write failures. Default: slog.Default().
	Logger *slog.Logger
}

// SumGolangOrgKey is the verifier key of sum.golang.org, as hard-coded in the
// go command (cmd/go/internal/modfetch/key.go).
const SumGolangOrgKey = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"

// WithDefaults returns o with defaults filled in.
func (o SumDBOptions) WithDefaults() SumDBOptions {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: o.Timeout}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Name == "" {
		if v, err := note.NewVerifier(o.Key); err == nil {
			o.Name = v.Name()
		}
	}
	return o
}

// Validate reports the first field that is missing or wrong.
func (o SumDBOptions) Validate() error {
	v, err := note.NewVerifier(o.Key)
	if err != nil {
		return fmt.Errorf("%w: sumdb key: %v", ErrConfig, err)
	}
	if o.Name != "" && o.Name != v.Name() {
		return fmt.Errorf("%w: sumdb name %q does not match the key's name %q", ErrConfig, o.Name, v.Name())
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w: sumdb url %q: want an http or https URL without query", ErrConfig, redact(o.URL))
	}
	if o.CacheDir == "" {
		return fmt.Errorf("%w: sumdb cache dir is required: it keeps the last verified tree head", ErrConfig)
	}
	return nil
}

// SumDB is a [DB] backed by golang.org/x/mod/sumdb.Client: every record it
// returns was proven to be in the database's signed log, and every signed tree
// head it sees was proven to extend the last one verified.
//
// Errors from Lookup: one satisfying errors.Is(err, fs.ErrNotExist) when the
// database has no such version; one wrapping [ErrSecurity] when the database
// misbehaved (inconsistent trees, records or tiles that fail verification);
// one wrapping [ErrUnavailable] when it could not be reached, answered 5xx or
// another unexpected status, or the cache directory failed.
//
// A SumDB is safe for concurrent use.
type SumDB struct {
	opts  SumDBOptions
	base  string // URL without trailing slash, for requests
	shown string // URL with credentials redacted, for messages
	dir   *cacheDir

	mu  sync.Mutex
	gen *generation
}

// epochs numbers the generations of every SumDB of the process, so that no
// two share an Epoch.
var epochs atomic.Uint64

// NewSumDB returns a SumDB for opts (after opts.WithDefaults()).
func NewSumDB(opts SumDBOptions) (*SumDB, error) {
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	base := strings.TrimRight(opts.URL, "/")
	return &SumDB{
		opts:  opts,
		base:  base,
		shown: redact(base),
		dir:   &cacheDir{root: opts.CacheDir},
	}, nil
}

// Name is the database's name.
func (db *SumDB) Name() string { return db.opts.Name }

// Lookup implements [DB]. The lookup itself cannot be interrupted (the sumdb
// client takes no context); when ctx ends first, Lookup returns at once and
// the lookup finishes in the background, bounded by Timeout per request.
func (db *SumDB) Lookup(ctx context.Context, m module.Version) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g := db.current()
	if lines, ok := g.answered(m); ok {
		return slices.Clone(lines), nil // only checked versions were answered
	}
	if err := module.Check(m.Path, m.Version); err != nil {
		return nil, err
	}
	type result struct {
		lines []string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		lines, err := g.client.Lookup(m.Path, m.Version)
		if err == nil {
			// The record holds both lines; this one comes from memory.
			var mod []string
			mod, err = g.client.Lookup(m.Path, m.Version+"/go.mod")
			lines = append(lines, mod...)
		}
		if err != nil {
			// sumdb.Client remembers failures for its lifetime (and a
			// transient one would then never clear): start afresh.
			db.retire(g)
			err = g.classify(err)
		} else if g.loads.Load() >= maxLoadsPerClient {
			db.retire(g)
		} else {
			g.keep(m, lines)
		}
		done <- result{lines, err}
	}()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: lookup %s: %w", db.opts.Name, m, ctx.Err())
	case r := <-done:
		return r.lines, r.err
	}
}

// maxLoadsPerClient bounds how long one sumdb.Client lives: it keeps every
// record and tile it loaded (from the cache directory or the database) in
// memory, so it is retired after loading this many; the cache directory
// keeps them for the next one. Lookups it answers from memory do not count:
// a re-verification run looks up the same dependencies of many versions,
// and retiring a client after so many lookups made the next one reload
// them all every few thousand.
var maxLoadsPerClient int64 = 10_000

// current returns the generation in use, starting one if needed.
func (db *SumDB) current() *generation {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.gen == nil {
		g := &generation{db: db, failures: make(map[string]*fetchError), epoch: epochs.Add(1)}
		g.client = sumdb.NewClient(g)
		db.gen = g
	}
	return db.gen
}

// Epoch names the client generation that answers lookups: while it stays
// the same, Lookup gives the same answer for a version it answered before
// (the client's, kept), so a caller may remember conclusions drawn from
// answers it read with the same Epoch before and after. It changes when a
// new client starts (at the first lookup, and after a failure or the
// loads bound retired the last one); no two SumDBs of a process have the
// same. 0: no client has started since the last one was retired.
func (db *SumDB) Epoch() uint64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.gen == nil {
		return 0
	}
	return db.gen.epoch
}

// retire makes the next lookup start a fresh client, unless another lookup
// already did.
func (db *SumDB) retire(g *generation) {
	db.mu.Lock()
	if db.gen == g {
		db.gen = nil
	}
	db.mu.Unlock()
}

// generation is one sumdb.Client and the ClientOps it uses. The ops remember
// the errors they returned, because sumdb.Client flattens errors into text
// (fmt.Errorf with %v): classify finds them again in that text.
type generation struct {
	db     *SumDB
	epoch  uint64 // Epoch
	client *sumdb.Client
	// loads counts the records and tiles the client read (ReadCache,
	// ReadRemote): what it holds in memory.
	loads atomic.Int64
	// answers are the client's answers so far, by module version: the
	// client would give the same ones from its memory for its lifetime,
	// but only after a goroutine (it takes no context) and a check of the
	// module version each. At most one a load.
	answersMu sync.Mutex
	answers   map[module.Version][]string

	mu       sync.Mutex
	failures map[string]*fetchError // by message
}

// remembered is the answer the current client gave for m before, if it did.
func (db *SumDB) remembered(m module.Version) ([]string, bool) {
	db.mu.Lock()
	g := db.gen
	db.mu.Unlock()
	if g == nil {
		return nil, false
	}
	return g.answered(m)
}

// answered returns the lines the client returned for m before, if it did:
// the kept slice, not to be written.
func (g *generation) answered(m module.Version) ([]string, bool) {
	g.answersMu.Lock()
	defer g.answersMu.Unlock()
	lines, ok := g.answers[m]
	return lines, ok
}

// keep remembers the client's answer for m.
func (g *generation) keep(m module.Version, lines []string) {
	g.answersMu.Lock()
	defer g.answersMu.Unlock()
	if g.answers == nil {
		g.answers = make(map[module.Version][]string)
	}
	g.answers[m] = slices.Clone(lines)
}

// maxFailures bounds the failures one generation remembers.
const maxFailures = 256

func (g *generation) remember(err error) {
	var fe *fetchError
	if !errors.As(err, &fe) {
		fe = &fetchError{msg: err.Error(), kind: kindUnavailable}
	}
	g.mu.Lock()
	if len(g.failures) < maxFailures {
		g.failures[fe.msg] = fe
	}
	g.mu.Unlock()
}

// classify turns an error from sumdb.Client.Lookup into one of this package's
// classes. Anything that is neither a misbehaviour reported through
// SecurityError nor a failure the ops returned is the client refusing the
// server's data (a bad signature, a record or tile its signed tree does not
// authenticate): that too is a security error.
func (g *generation) classify(err error) error {
	name := g.db.opts.Name
	msg := err.Error()
	if strings.Contains(msg, sumdb.ErrSecurity.Error()) {
		return fmt.Errorf("%w: %s presented a tree inconsistent with the tree head verified earlier (a fork, or a rollback to another history); proof logged",
			ErrSecurity, name)
	}
	g.mu.Lock()
	var found *fetchError
	for _, fe := range g.failures {
		if strings.Contains(msg, fe.msg) && (found == nil || fe.kind < found.kind) {
			found = fe
		}
	}
	g.mu.Unlock()
	if found == nil {
		return fmt.Errorf("%w: %s: response failed verification: %s", ErrSecurity, name, oneLine(msg))
	}
	switch found.kind {
	case kindNotFound:
		return found
	case kindBad:
		return fmt.Errorf("%w: %s: %s", ErrSecurity, name, found.msg)
	default:
		return fmt.Errorf("%w: %s: %s", ErrUnavailable, name, found.msg)
	}
}

// The sumdb.ClientOps of a generation.

func (g *generation) ReadRemote(path string) ([]byte, error) {
	g.loads.Add(1)
	data, err := g.db.get(path)
	if err != nil {
		g.remember(err)
	}
	return data, err
}

func (g *generation) ReadConfig(file string) ([]byte, error) {
	if file == "key" {
		return []byte(g.db.opts.Key), nil
	}
	data, err := g.db.dir.readConfig(file)
	if err != nil {
		g.remember(err)
	}
	return data, err
}

func (g *generation) WriteConfig(file string, old, new []byte) error {
	err := g.db.dir.writeConfig(file, old, new)
	if err != nil && err != sumdb.ErrWriteConflict {
		g.remember(err)
	}
	return err
}

func (g *generation) ReadCache(file string) ([]byte, error) {
	g.loads.Add(1)
	return g.db.dir.readCache(file)
}

func (g *generation) WriteCache(file string, data []byte) {
	if err := g.db.dir.writeCache(file, data); err != nil {
		g.db.opts.Logger.Warn("sumdb cache write failed", "db", g.db.opts.Name, "err", err)
	}
}

func (g *generation) Log(msg string) {
	g.db.opts.Logger.Debug(msg, "db", g.db.opts.Name)
}

func (g *generation) SecurityError(msg string) {
	g.db.opts.Logger.Error("SECURITY ERROR: checksum database misbehaved",
		"db", g.db.opts.Name, "url", g.db.shown, "proof", msg)
}

// Classes of failures the ops return; lower values win when a message holds
// several.
const (
	kindNotFound = iota + 1
	kindBad
	kindUnavailable
)

// fetchError is a failed request (or cache I/O). Its message names the URL,
// which makes it unique enough to be found again in sumdb.Client's errors.
type fetchError struct {
	msg  string
	kind int
}

func (e *fetchError) Error() string { return e.msg }

// Is makes a not-found answer satisfy errors.Is(err, fs.ErrNotExist), as
// the DB contract asks.
func (e *fetchError) Is(target error) bool {
	return e.kind == kindNotFound && target == fs.ErrNotExist
}

// maxResponse bounds a response: a lookup is a few hundred bytes, a full
// hash tile 8 KiB.
const maxResponse = 1 << 20

// get fetches base+path. A 404 or 410 for a lookup is "no such version"; for a
// tile it is the server failing to serve what its signed tree covers, which
// is treated as unavailability (retry), like any other unexpected status.
func (db *SumDB) get(path string) ([]byte, error) {
	shown := db.shown + path
	ctx, cancel := context.WithTimeout(context.Background(), db.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, db.base+path, nil)
	if err != nil {
		return nil, &fetchError{msg: fmt.Sprintf("GET %s: %v", shown, err), kind: kindUnavailable}
	}
	req.Header.Set("User-Agent", "modgate-depsum")
	resp, err := db.opts.HTTPClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL, with any credentials
		}
		return nil, &fetchError{msg: fmt.Sprintf("GET %s: %v", shown, err), kind: kindUnavailable}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		kind := kindUnavailable
		if (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone) && strings.HasPrefix(path, "/lookup/") {
			kind = kindNotFound
		}
		msg := fmt.Sprintf("GET %s: %s", shown, resp.Status)
		if s := oneLine(strings.ToValidUTF8(string(snippet), "?")); s != "" {
			msg += ": " + quote(s)
		}
		return nil, &fetchError{msg: msg, kind: kind}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, &fetchError{msg: fmt.Sprintf("GET %s: reading response: %v", shown, err), kind: kindUnavailable}
	}
	if len(data) > maxResponse {
		return nil, &fetchError{msg: fmt.Sprintf("GET %s: response larger than %d bytes", shown, maxResponse), kind: kindBad}
	}
	return data, nil
}

// redact hides a URL's credentials: a proxy URL may carry a token as its
// user name as well as a password.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparsable URL>"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	return u.String()
}
