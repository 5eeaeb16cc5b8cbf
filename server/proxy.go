package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/modgate/modgate/internal/oneline"
	"github.com/modgate/modgate/store"
)

// Cache policies. A published version never changes, so its files may be
// cached forever. The list and @latest change with every admission; they
// are revalidated each time (cheap, with the ETag) so that a version is
// usable the moment it is admitted. Errors are not stored: a 404 now may
// be a 200 after the next admission.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheRevalid   = "no-cache"
	cacheNone      = "no-store"
)

// contentTypes by file suffix. The go command requires only that text be
// UTF-8; the JSON types let browsers and tools show documents properly.
var contentTypes = map[string]string{
	".info":               "application/json",
	".mod":                "text/plain; charset=utf-8",
	".zip":                "application/zip",
	store.DocSPDX:         "application/json",
	store.DocSPDXSig:      "text/plain; charset=utf-8", // cosign writes base64 text
	store.DocSPDXBundle:   "application/json",
	store.DocInToto:       "application/x-ndjson",
	store.StateReverified: "application/x-ndjson",
}

// maxInfo bounds what @latest reads into memory.
const maxInfo = 1 << 20

type proxy struct {
	store   *store.Dir
	log     *slog.Logger
	missing Missing
}

// Missing decides what the proxy answers for what it has not admitted:
// modgate serve's upstream.missing rules (deny, enqueue, passthrough).
type Missing interface {
	// Version is asked about <path>/@v/<version>.info, .mod or .zip of a
	// version that is not published. A nil error means it is published
	// now (a passthrough admission): the proxy serves it. Otherwise a
	// *Refusal is the answer; any other error is a 502.
	Version(ctx context.Context, m module.Version) error
	// List is asked about @v/list and @latest of a module that has no
	// published version: the versions to list, or a *Refusal.
	List(ctx context.Context, path string) ([]string, error)
}

// Refusal is an answer of Missing: a status and one line for the go
// command's user.
type Refusal struct {
	Status int
	Msg    string
}

func (r *Refusal) Error() string { return r.Msg }

// Options configure New.
type Options struct {
	Logger *slog.Logger // nil: discard
	// Missing, when set, is asked about what is not published; nil: 404.
	Missing Missing
}

// New is NewProxy with options.
func New(d *store.Dir, o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &proxy{store: d, log: o.Logger, missing: o.Missing}
}

// NewProxy returns a handler that serves the store d by the GOPROXY
// protocol: <module>/@v/list, <module>/@latest and, for published versions
// only, <module>/@v/<version>.info, .mod, .zip and the public documents
// (.spdx.json, .spdx.json.sig, .spdx.json.bundle, .intoto.jsonl). It
// answers GET and HEAD, with ranges and conditional requests. Mount it at
// the root of a host or under http.StripPrefix. log may be nil.
func NewProxy(d *store.Dir, log *slog.Logger) http.Handler {
	return New(d, Options{Logger: log})
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Documents come from module authors: never let a browser guess.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		fail(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	req, rerr := parsePath(r.URL.Path)
	if rerr != nil {
		fail(w, rerr.status, rerr.msg)
		return
	}
	switch req.kind {
	case kindList:
		p.serveList(w, r, req.mod.Path)
	case kindLatest:
		p.serveLatest(w, r, req.mod.Path)
	default:
		p.serveFile(w, r, req.mod, req.suffix)
	}
}

func (p *proxy) serveList(w http.ResponseWriter, r *http.Request, path string) {
	vs, err := p.store.Versions(r.Context(), path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.internalError(w, r, err)
		return
	}
	if len(vs) == 0 && p.missing != nil {
		if vs, err = p.missingList(r.Context(), path); err != nil {
			if !p.allQuarantined(w, r, path) {
				p.refuse(w, r, err)
			}
			return
		}
	}
	if len(vs) == 0 {
		if !p.allQuarantined(w, r, path) {
			fail(w, http.StatusNotFound, "not found: module "+path+" has no published versions")
		}
		return
	}
	var b bytes.Buffer
	for _, v := range vs {
		b.WriteString(v)
		b.WriteByte('\n')
	}
	serveBytes(w, r, "text/plain; charset=utf-8", b.Bytes())
}

// serveLatest answers with the .info of the highest release version, or
// of the highest prerelease if there is no release. The go command asks for
// @latest only when the list has no usable versions, but other tools ask.
func (p *proxy) serveLatest(w http.ResponseWriter, r *http.Request, path string) {
	vs, err := p.store.Versions(r.Context(), path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.internalError(w, r, err)
		return
	}
	if len(vs) == 0 && p.missing != nil {
		upstream, err := p.missingList(r.Context(), path)
		if err != nil {
			if !p.allQuarantined(w, r, path) {
				p.refuse(w, r, err)
			}
			return
		}
		if v := Latest(upstream); v != "" {
			if err := p.missing.Version(r.Context(), module.Version{Path: path, Version: v}); err != nil {
				p.refuse(w, r, err)
				return
			}
			vs = []string{v}
		}
	}
	v := latest(vs)
	if v == "" {
		if !p.allQuarantined(w, r, path) {
			fail(w, http.StatusNotFound, "not found: module "+path+" has no published versions")
		}
		return
	}
	m := module.Version{Path: path, Version: v}
	f, err := p.store.OpenFile(r.Context(), m, ".info")
	if err != nil {
		p.storeError(w, r, m, err)
		return
	}
	defer f.Close()
	info, err := io.ReadAll(io.LimitReader(f, maxInfo))
	if err != nil {
		p.internalError(w, r, err)
		return
	}
	serveBytes(w, r, "application/json", info)
}

// missingList asks the Missing about a module none of whose versions are
// listed here, and leaves out of its answer the versions quarantined here:
// an upstream's list names them too.
func (p *proxy) missingList(ctx context.Context, path string) ([]string, error) {
	vs, err := p.missing.List(ctx, path)
	if err != nil || len(vs) == 0 {
		return vs, err
	}
	qs, err := p.store.QuarantinedVersions(ctx, path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return slices.DeleteFunc(vs, func(v string) bool { return slices.Contains(qs, v) }), nil
}

// allQuarantined answers the list or @latest of a module whose published
// versions are all quarantined, and that nothing else (an upstream
// passthrough) can answer for: 403 naming the latest of them and its
// reason. A 404 would tell the go command that the module is not here,
// and it would go on to the next proxy in GOPROXY. It reports whether it
// answered; it does not when the module has no quarantined version.
func (p *proxy) allQuarantined(w http.ResponseWriter, r *http.Request, path string) bool {
	qs, err := p.store.QuarantinedVersions(r.Context(), path)
	if err != nil || len(qs) == 0 {
		return false
	}
	m := module.Version{Path: path, Version: latest(qs)}
	reason := "reason unreadable"
	if q, err := p.store.Quarantined(r.Context(), m); err == nil && q != nil {
		reason = q.Reason
	}
	more := ""
	if len(qs) > 1 {
		more = fmt.Sprintf(" (and %d more)", len(qs)-1)
	}
	fail(w, http.StatusForbidden, "forbidden: every version of module "+path+" published here is quarantined by modgate: "+
		m.Version+": "+oneLine(reason)+more)
	return true
}

// Latest returns the version the GOPROXY protocol's @latest names among vs
// (in any order): the highest release, else the highest prerelease, else "".
func Latest(vs []string) string {
	s := slices.Clone(vs)
	semver.Sort(s)
	return latest(s)
}

// latest is Latest for vs already in semver order.
func latest(vs []string) string {
	for i := len(vs) - 1; i >= 0; i-- {
		if semver.Prerelease(vs[i]) == "" {
			return vs[i]
		}
	}
	if len(vs) > 0 {
		return vs[len(vs)-1]
	}
	return ""
}

func (p *proxy) serveFile(w http.ResponseWriter, r *http.Request, m module.Version, suffix string) {
	ctx := r.Context()
	// A quarantined version is refused with 403, not 404: the go command
	// stops at a 403 instead of falling back to the next proxy in GOPROXY,
	// which could serve other bytes for it.
	// Quarantined also tells a version that is not published at all.
	q, err := p.store.Quarantined(ctx, m)
	published := !errors.Is(err, fs.ErrNotExist)
	if err != nil && published {
		p.storeError(w, r, m, err)
		return
	}
	if q != nil {
		fail(w, http.StatusForbidden, "forbidden: "+m.String()+" is quarantined by modgate: "+oneLine(q.Reason))
		return
	}
	if !published && p.missing != nil && (suffix == ".info" || suffix == ".mod" || suffix == ".zip") {
		if err := p.missing.Version(ctx, m); err != nil {
			p.refuse(w, r, err)
			return
		}
	}
	f, err := p.store.OpenFile(ctx, m, suffix)
	if err != nil {
		p.storeError(w, r, m, err)
		return
	}
	defer f.Close()
	var etag string
	if suffix == ".zip" {
		etag, err = p.zipETag(ctx, m)
	} else {
		etag, err = fileETag(f)
	}
	if err != nil {
		// The version is published, so this is a broken store, never a 404
		// that would send the go command to the next proxy.
		p.internalError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentTypes[suffix])
	if store.IsState(suffix) {
		h.Set("Cache-Control", cacheRevalid)
	} else {
		h.Set("Cache-Control", cacheImmutable)
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, f)
}

// zipETag is the zip's h1: hash, which names its content and is already
// stored beside it: hashing a zip of up to 500 MB per request would not do.
func (p *proxy) zipETag(ctx context.Context, m module.Version) (string, error) {
	f, err := p.store.OpenFile(ctx, m, ".ziphash")
	if err != nil {
		return "", err
	}
	defer f.Close()
	h, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return "", err
	}
	h = bytes.TrimSpace(h)
	// An ETag is a quoted string of visible characters other than '"'.
	for _, c := range h {
		if c <= ' ' || c == '"' || c >= 0x7f {
			return "", errors.New("malformed .ziphash")
		}
	}
	return `"` + string(h) + `"`, nil
}

// fileETag hashes f's content and rewinds it. These files are small (.info,
// .mod, documents), and their hash is an ETag every replica agrees on.
func fileETag(f *os.File) (string, error) {
	buf := bufPool.Get().(*[32 << 10]byte)
	defer bufPool.Put(buf)
	h := sha256.New()
	// Hide f's WriteTo, which would allocate a fresh buffer per request.
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf[:]); err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return etagOf(h.Sum(nil)), nil
}

var bufPool = sync.Pool{New: func() any { return new([32 << 10]byte) }}

func etagOf(sum []byte) string {
	return `"sha256-` + base64.RawURLEncoding.EncodeToString(sum) + `"`
}

// serveBytes serves a response that changes over time (list, @latest).
func serveBytes(w http.ResponseWriter, r *http.Request, contentType string, data []byte) {
	sum := sha256.Sum256(data)
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", cacheRevalid)
	h.Set("ETag", etagOf(sum[:]))
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// storeError answers for a failed store read of m.
func (p *proxy) storeError(w http.ResponseWriter, r *http.Request, m module.Version, err error) {
	if errors.Is(err, fs.ErrNotExist) {
		fail(w, http.StatusNotFound, "not found: "+m.String()+" is not published here")
		return
	}
	p.internalError(w, r, err)
}

// refuse answers a Missing error.
func (p *proxy) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var rf *Refusal
	if errors.As(err, &rf) {
		fail(w, rf.Status, oneLine(rf.Msg))
		return
	}
	if r.Context().Err() == nil {
		p.log.ErrorContext(r.Context(), "goproxy: upstream fallback failed", "path", r.URL.Path, "err", err)
	}
	fail(w, http.StatusBadGateway, "bad gateway: "+oneLine(err.Error()))
}

// internalError logs err, which may name files of the store, and answers
// without it.
func (p *proxy) internalError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() == nil {
		p.log.ErrorContext(r.Context(), "goproxy: store read failed", "path", r.URL.Path, "err", err)
	}
	fail(w, http.StatusInternalServerError, "internal server error")
}

// fail writes an error. The go command shows a text/plain body to its user
// ("server response: ..."), so msg is one short line for a person.
func fail(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Del("ETag")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", cacheNone)
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// oneLine is s on one line, at most 400 bytes.
func oneLine(s string) string { return oneline.String(s, 400) }
