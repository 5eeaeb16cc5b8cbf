package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// allowedRepos is the allow-list the tests configure: the fixtures'
// repositories, by their https clone URL.
var allowedRepos = map[string]bool{
	"https://github.com/acme/widgets.git":                  true,
	"https://gitlab.example.com/acme/platform/widgets.git": true,
	"https://git.example.org/acme/widgets.git":             true,
}

func allowFixtures(urls []string) (string, bool) {
	for _, u := range urls {
		if allowedRepos[u] {
			return u, true
		}
	}
	return "", false
}

// sink records what it is handed and fails on command.
type sink struct {
	mu     sync.Mutex
	events []*Event
	repos  []string
	fail   error
}

func (s *sink) Enqueue(ctx context.Context, ev *Event, repo string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return "", s.fail
	}
	s.events = append(s.events, ev)
	s.repos = append(s.repos, repo)
	return fmt.Sprintf("ev-%04d", len(s.events)), nil
}

func (s *sink) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

type auditLog struct {
	mu   sync.Mutex
	recs []AuditRecord
}

func (a *auditLog) Audit(ctx context.Context, rec AuditRecord) {
	a.mu.Lock()
	a.recs = append(a.recs, rec)
	a.mu.Unlock()
}

func (a *auditLog) all() []AuditRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]AuditRecord(nil), a.recs...)
}

// failingReplays fails every call while fail is set.
type failingReplays struct {
	Replays
	fail bool
}

func (f *failingReplays) Seen(ctx context.Context, p Provider, key string) (bool, error) {
	if f.fail {
		return false, errors.New("nats: timeout")
	}
	return f.Replays.Seen(ctx, p, key)
}

func (f *failingReplays) Has(ctx context.Context, p Provider, key string) (bool, error) {
	if f.fail {
		return false, errors.New("nats: timeout")
	}
	return f.Replays.Has(ctx, p, key)
}

// rig is a handler with recording dependencies and captured logs.
type rig struct {
	t       *testing.T
	h       http.Handler
	cfg     Config
	sink    *sink
	replays *failingReplays
	audit   *auditLog
	logs    *bytes.Buffer
	bodies  []string // every response body, for the leak test
}

func newRig(t *testing.T, edit ...func(*Config)) *rig {
	cfg := Config{Secrets: testSecrets, Allowed: allowFixtures}
	for _, e := range edit {
		e(&cfg)
	}
	r := &rig{t: t, cfg: cfg, sink: &sink{}, replays: &failingReplays{Replays: NewMemoryReplays(0)},
		audit: &auditLog{}, logs: &bytes.Buffer{}}
	log := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.h = NewHandler(cfg, r.sink, r.replays, r.audit, log)
	return r
}

type reply struct {
	status int
	header http.Header
	body   response
	raw    string
}

func (r *rig) do(method, path string, h http.Header, body []byte) reply {
	r.t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.RemoteAddr = "192.0.2.10:41234"
	for k, v := range h {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	rep := reply{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if err := json.Unmarshal(w.Body.Bytes(), &rep.body); err != nil {
		r.t.Fatalf("%s %s: response is not JSON: %q", method, path, w.Body.String())
	}
	r.bodies = append(r.bodies, rep.raw)
	return rep
}

func (r *rig) send(f fixture, h http.Header, body []byte) reply {
	r.t.Helper()
	return r.do(http.MethodPost, "/hooks/"+string(f.provider), h, body)
}

func (r *rig) deliver(f fixture) reply {
	r.t.Helper()
	return r.send(f, f.header, f.body)
}

// lastAudit checks that exactly n records were written and returns the last.
func (r *rig) lastAudit(n int) AuditRecord {
	r.t.Helper()
	recs := r.audit.all()
	if len(recs) != n {
		r.t.Fatalf("%d audit records, want %d: %+v", len(recs), n, recs)
	}
	return recs[n-1]
}

func (r *rig) expect(rep reply, status int, result string) {
	r.t.Helper()
	if rep.status != status || rep.body.Result != result {
		r.t.Fatalf("got %d %s (%s), want %d %s", rep.status, rep.body.Result, rep.body.Reason, status, result)
	}
}
