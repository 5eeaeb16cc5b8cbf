package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// want is what each fixture must become, delivered as recorded.
var want = map[string]struct {
	status int
	result string
	kind   string
	tag    string
}{
	"github/push_tag":         {202, ResultAccepted, KindTagPush, "v1.2.3"},
	"github/push_tag_form":    {202, ResultAccepted, KindTagPush, "v1.2.3"},
	"github/push_tag_nested":  {202, ResultAccepted, KindTagPush, "storage/v0.4.0"},
	"github/create_tag":       {202, ResultAccepted, KindTagCreate, "v1.2.3"},
	"github/push_tag_delete":  {202, ResultRecorded, KindTagDelete, "v1.2.3"},
	"github/delete_tag":       {202, ResultRecorded, KindTagDelete, "v1.2.3"},
	"github/push_branch":      {200, ResultIgnored, "", ""},
	"github/create_branch":    {200, ResultIgnored, "", ""},
	"github/ping":             {200, ResultIgnored, "", ""},
	"github/push_tag_hostile": {400, ResultRefused, "", ""},
	"gitlab/tag_push":         {202, ResultAccepted, KindTagPush, "v1.2.3"},
	"gitlab/tag_push_delete":  {202, ResultRecorded, KindTagDelete, "v1.2.3"},
	"gitlab/push_branch":      {200, ResultIgnored, "", ""},
	"gitlab/tag_push_hostile": {400, ResultRefused, "", ""},
	"gitea/push_tag":          {202, ResultAccepted, KindTagPush, "v1.2.3"},
	"gitea/create_tag":        {202, ResultAccepted, KindTagCreate, "v1.2.3"},
	"gitea/push_tag_delete":   {202, ResultRecorded, KindTagDelete, "v1.2.3"},
	"gitea/delete_tag":        {202, ResultRecorded, KindTagDelete, "v1.2.3"},
	"gitea/push_branch":       {200, ResultIgnored, "", ""},
	"gitea/create_branch":     {200, ResultIgnored, "", ""},
	"gitea/push_tag_hostile":  {400, ResultRefused, "", ""},
}

// TestHandlerFixtures delivers every fixture as recorded.
func TestHandlerFixtures(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range loadFixtures(t) {
		t.Run(f.String(), func(t *testing.T) {
			w, ok := want[f.String()]
			if !ok {
				t.Fatalf("no expectation for fixture %s", f)
			}
			seen[f.String()] = true
			r := newRig(t)
			rep := r.deliver(f)
			r.expect(rep, w.status, w.result)
			rec := r.lastAudit(1)
			if rec.Result != w.result || rec.Status != w.status || rec.Provider != f.provider {
				t.Errorf("audit record %+v", rec)
			}
			id, _ := DeliveryID(f.provider, f.header)
			if rec.DeliveryID != id || id == "" {
				t.Errorf("audit delivery id %q, want %q", rec.DeliveryID, id)
			}
			if rec.RemoteAddr != "192.0.2.10:41234" {
				t.Errorf("audit remote address %q", rec.RemoteAddr)
			}
			if w.result != ResultAccepted && rep.body.Reason == "" {
				t.Errorf("%s without a reason", w.result)
			}
			if w.kind != "" {
				if rec.Event == nil || rec.Event.Kind != w.kind || rec.Event.Tag != w.tag {
					t.Fatalf("audit event %+v, want %s %s", rec.Event, w.kind, w.tag)
				}
				if !allowedRepos[rec.Repo] {
					t.Errorf("audit repo %q", rec.Repo)
				}
			}
			n := r.sink.count()
			if w.result == ResultAccepted {
				if n != 1 || rep.body.EventID != "ev-0001" || rec.EventID != "ev-0001" {
					t.Fatalf("enqueued %d, event id %q/%q", n, rep.body.EventID, rec.EventID)
				}
				if ev := r.sink.events[0]; ev != rec.Event || r.sink.repos[0] != rec.Repo {
					t.Errorf("sink got %+v for %s", ev, r.sink.repos[0])
				}
			} else if n != 0 {
				t.Fatalf("%s delivery enqueued %d events", w.result, n)
			}
			if ct := rep.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("fixture %s is missing", name)
		}
	}
}

// signatureHeaders are the headers that carry a signature or token.
var signatureHeaders = []string{"X-Hub-Signature-256", "X-Hub-Signature", "X-Gitea-Signature", "X-Gogs-Signature", "X-Gitlab-Token"}

// forgeries returns the ways each fixture can be forged: altered body,
// signed with the wrong secret, unsigned, signed with SHA-1 only. GitLab
// signs nothing, so an altered body with the right token is not a forgery
// there: it is what any holder of the token can send.
func forgeries(f fixture) map[string]func() (http.Header, []byte) {
	wrong := []byte("not-the-configured-secret-000000")
	m := map[string]func() (http.Header, []byte){
		"altered body": func() (http.Header, []byte) {
			body := bytes.Replace(f.body, []byte("widgets"), []byte("gadgets"), 1)
			if bytes.Equal(body, f.body) {
				panic("fixture without \"widgets\"")
			}
			return f.clone(), body
		},
		"wrong secret": func() (http.Header, []byte) {
			h := f.clone()
			for _, k := range signatureHeaders {
				if h.Get(k) == "" {
					continue
				}
				switch k {
				case "X-Hub-Signature-256":
					h.Set(k, "sha256="+Sign(wrong, f.body))
				case "X-Gitea-Signature", "X-Gogs-Signature":
					h.Set(k, Sign(wrong, f.body))
				case "X-Gitlab-Token":
					h.Set(k, string(wrong))
				}
			}
			return h, f.body
		},
		"missing signature": func() (http.Header, []byte) {
			h := f.clone()
			for _, k := range signatureHeaders {
				h.Del(k)
			}
			return h, f.body
		},
		"legacy sha1 only": func() (http.Header, []byte) {
			h := f.clone()
			for _, k := range signatureHeaders {
				if k != "X-Hub-Signature" {
					h.Del(k)
				}
			}
			return h, f.body
		},
	}
	if f.provider == GitLab {
		delete(m, "altered body")
	}
	return m
}

// TestForgedRefused delivers every fixture forged every way: each is 401,
// audited once, not enqueued, and leaves no replay record behind (the
// genuine delivery is accepted afterwards).
func TestForgedRefused(t *testing.T) {
	for _, f := range loadFixtures(t) {
		for how, forge := range forgeries(f) {
			t.Run(f.String()+"/"+how, func(t *testing.T) {
				r := newRig(t)
				h, body := forge()
				rep := r.send(f, h, body)
				r.expect(rep, http.StatusUnauthorized, ResultRefused)
				rec := r.lastAudit(1)
				if rec.Status != 401 || rec.Event != nil || !strings.Contains(rec.Reason, "unauthenticated") {
					t.Errorf("audit record %+v", rec)
				}
				if r.sink.count() != 0 {
					t.Fatal("forged delivery enqueued")
				}
				rep = r.deliver(f)
				if rep.status == http.StatusUnauthorized || rep.body.Result == ResultDuplicate {
					t.Fatalf("genuine delivery after a forged one: %d %s %s", rep.status, rep.body.Result, rep.body.Reason)
				}
				r.lastAudit(2)
			})
		}
	}
}

// TestGiteaSignatureHeaders: Gitea's X-Hub-Signature-256 alone is enough;
// a wrong X-Gitea-Signature is refused even next to a right
// X-Hub-Signature-256.
func TestGiteaSignatureHeaders(t *testing.T) {
	f := findFixture(t, Gitea, "push_tag")
	secret := testSecrets[Gitea]

	h := f.clone()
	h.Del("X-Gitea-Signature")
	if err := Verify(Gitea, h, f.body, secret); err != nil {
		t.Errorf("X-Hub-Signature-256 alone: %v", err)
	}
	h = f.clone()
	h.Del("X-Hub-Signature-256")
	if err := Verify(Gitea, h, f.body, secret); err != nil {
		t.Errorf("X-Gitea-Signature alone: %v", err)
	}
	h = f.clone()
	h.Set("X-Gitea-Signature", Sign([]byte("another-secret-0123456789"), f.body))
	if err := Verify(Gitea, h, f.body, secret); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("wrong X-Gitea-Signature beside a right X-Hub-Signature-256: %v", err)
	}
	h = f.clone()
	h.Add("X-Gitea-Signature", h.Get("X-Gitea-Signature"))
	if err := Verify(Gitea, h, f.body, secret); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("two X-Gitea-Signature headers: %v", err)
	}
	// Gitea sends an empty signature when the webhook has no secret.
	h = f.clone()
	h.Set("X-Gitea-Signature", "")
	h.Set("X-Hub-Signature-256", "sha256=")
	if err := Verify(Gitea, h, f.body, secret); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("empty signatures: %v", err)
	}
}

func TestVerifyNoSecret(t *testing.T) {
	for _, f := range loadFixtures(t) {
		for _, secret := range [][]byte{nil, {}} {
			if err := Verify(f.provider, f.header, f.body, secret); !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("%s with no secret: %v", f, err)
			}
		}
	}
	// GitLab: an empty token header must not match an empty secret either.
	h := http.Header{"X-Gitlab-Token": {""}}
	if err := Verify(GitLab, h, nil, nil); err == nil {
		t.Error("empty GitLab token accepted with no secret")
	}
}

// TestReplay: a delivery id seen before is a duplicate, answered 200 and not
// enqueued; so is the same signed body under a fresh id (GitHub, Gitea).
func TestReplay(t *testing.T) {
	for _, c := range []struct {
		p         Provider
		name      string
		idHeader  string
		bodyDedup bool
	}{
		{GitHub, "push_tag", "X-GitHub-Delivery", true},
		{Gitea, "push_tag", "X-Gitea-Delivery", true},
		{GitLab, "tag_push", "Idempotency-Key", false},
	} {
		t.Run(string(c.p), func(t *testing.T) {
			f := findFixture(t, c.p, c.name)
			r := newRig(t)
			r.expect(r.deliver(f), 202, ResultAccepted)
			rep := r.deliver(f)
			r.expect(rep, 200, ResultDuplicate)
			if rec := r.lastAudit(2); rec.Result != ResultDuplicate || rec.Status != 200 || !strings.Contains(rec.Reason, "delivery id") {
				t.Errorf("audit record %+v", rec)
			}

			// The same body under a new delivery id.
			h := f.clone()
			h.Set(c.idHeader, "0d5e8a7c-1b2f-4c3d-9e4f-5a6b7c8d9e0f")
			if c.bodyDedup {
				r.expect(r.send(f, h, f.body), 200, ResultDuplicate)
				if rec := r.lastAudit(3); !strings.Contains(rec.Reason, "same signed body") {
					t.Errorf("audit record %+v", rec)
				}
				if n := r.sink.count(); n != 1 {
					t.Fatalf("enqueued %d times", n)
				}
			} else {
				// GitLab signs nothing; a token holder could forge any
				// body anyway, and a re-pushed tag legitimately sends
				// the same body again.
				r.expect(r.send(f, h, f.body), 202, ResultAccepted)
				r.lastAudit(3)
			}
		})
	}
}

// TestOversized: bodies over MaxBody are 413 and are neither verified nor
// recorded, whether or not the client declares the length.
func TestOversized(t *testing.T) {
	f := findFixture(t, GitHub, "push_tag")
	limit := int64(len(f.body) - 1)
	for _, declared := range []bool{true, false} {
		t.Run(fmt.Sprint("declared=", declared), func(t *testing.T) {
			r := newRig(t, func(c *Config) { c.MaxBody = limit })
			req := httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(f.body))
			req.Header = f.clone()
			if !declared {
				req.ContentLength = -1
			}
			w := httptest.NewRecorder()
			r.h.ServeHTTP(w, req)
			if w.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d %s", w.Code, w.Body)
			}
			if rec := r.lastAudit(1); rec.Status != 413 || rec.Result != ResultRefused {
				t.Errorf("audit record %+v", rec)
			}
			// Nothing was recorded: at the right size it is accepted.
			cfg := r.cfg
			cfg.MaxBody = int64(len(f.body))
			r.h = NewHandler(cfg, r.sink, r.replays, r.audit, nil)
			r.expect(r.deliver(f), 202, ResultAccepted)
		})
	}
}

func TestDisallowedRepository(t *testing.T) {
	for _, name := range []string{"github/push_tag", "gitlab/tag_push", "gitea/push_tag", "gitea/delete_tag"} {
		t.Run(name, func(t *testing.T) {
			p, n, _ := strings.Cut(name, "/")
			f := findFixture(t, Provider(p), n)
			r := newRig(t, func(c *Config) {
				c.Allowed = func([]string) (string, bool) { return "", false }
			})
			rep := r.deliver(f)
			r.expect(rep, http.StatusForbidden, ResultRefused)
			rec := r.lastAudit(1)
			if rec.Event == nil || rec.Repo != "" || !strings.Contains(rec.Reason, "not allowed") {
				t.Errorf("audit record %+v", rec)
			}
			if r.sink.count() != 0 {
				t.Fatal("disallowed repository enqueued")
			}
		})
	}
	// No allow-list at all allows nothing.
	r := newRig(t, func(c *Config) { c.Allowed = nil })
	r.expect(r.deliver(findFixture(t, GitHub, "push_tag")), http.StatusForbidden, ResultRefused)
}

// TestSinkFailure: a queue failure is 503, and the provider's redelivery of
// the same delivery is then accepted, not taken for a replay.
func TestSinkFailure(t *testing.T) {
	for _, name := range []string{"github/push_tag", "gitlab/tag_push", "gitea/push_tag"} {
		t.Run(name, func(t *testing.T) {
			p, n, _ := strings.Cut(name, "/")
			f := findFixture(t, Provider(p), n)
			r := newRig(t)
			r.sink.setFail(errors.New("nats: no responders available for request"))
			rep := r.deliver(f)
			r.expect(rep, http.StatusServiceUnavailable, ResultFailed)
			if strings.Contains(rep.raw, "nats") {
				t.Errorf("internal error in the response: %s", rep.raw)
			}
			if rec := r.lastAudit(1); rec.Status != 503 || rec.Event == nil {
				t.Errorf("audit record %+v", rec)
			}
			r.sink.setFail(nil)
			r.expect(r.deliver(f), 202, ResultAccepted)
			r.expect(r.deliver(f), 200, ResultDuplicate)
			if n := r.sink.count(); n != 1 {
				t.Fatalf("enqueued %d times", n)
			}
		})
	}
}

func TestReplayStoreFailure(t *testing.T) {
	f := findFixture(t, GitHub, "push_tag")
	r := newRig(t)
	r.replays.fail = true
	r.expect(r.deliver(f), http.StatusServiceUnavailable, ResultFailed)
	r.lastAudit(1)
	r.replays.fail = false
	r.expect(r.deliver(f), 202, ResultAccepted)
}

// TestRefusals covers the refusals that do not depend on a fixture's kind.
func TestRefusals(t *testing.T) {
	gh := findFixture(t, GitHub, "push_tag")
	gt := findFixture(t, Gitea, "push_tag")
	cases := []struct {
		name   string
		edit   func(*Config)
		method string
		path   string
		header func() http.Header
		body   []byte
		status int
	}{
		{name: "GET", method: "GET", path: "/hooks/github", status: 405},
		{name: "unknown provider", path: "/hooks/bitbucket", status: 404},
		{name: "no provider", path: "/hooks/", status: 404},
		{name: "other path", path: "/hooks/github/extra", status: 404},
		{name: "disabled provider", path: "/hooks/gitea", edit: func(c *Config) {
			c.Secrets = map[Provider][]byte{GitHub: testSecrets[GitHub]}
		}, header: gt.clone, body: gt.body, status: 404},
		{name: "empty secret", path: "/hooks/gitea", edit: func(c *Config) {
			c.Secrets = map[Provider][]byte{Gitea: {}}
		}, header: gt.clone, body: gt.body, status: 404},
		{name: "text/plain", header: func() http.Header {
			h := gh.clone()
			h.Set("Content-Type", "text/plain")
			return h
		}, status: 415},
		{name: "no content type", header: func() http.Header {
			h := gh.clone()
			h.Del("Content-Type")
			return h
		}, status: 415},
		{name: "gitea form", path: "/hooks/gitea", header: func() http.Header {
			h := gt.clone()
			h.Set("Content-Type", "application/x-www-form-urlencoded")
			return h
		}, body: gt.body, status: 415},
		{name: "missing delivery id", header: func() http.Header {
			h := gh.clone()
			h.Del("X-GitHub-Delivery")
			return h
		}, status: 400},
		{name: "malformed delivery id", header: func() http.Header {
			h := gh.clone()
			h.Set("X-GitHub-Delivery", "../../etc/passwd")
			return h
		}, status: 400},
		{name: "missing event header", header: func() http.Header {
			h := gh.clone()
			h.Del("X-GitHub-Event")
			return h
		}, status: 400},
		{name: "signed but not JSON", header: func() http.Header {
			h := gh.clone()
			h.Set("X-Hub-Signature-256", "sha256="+Sign(testSecrets[GitHub], []byte("{not json")))
			return h
		}, body: []byte("{not json"), status: 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var edits []func(*Config)
			if c.edit != nil {
				edits = append(edits, c.edit)
			}
			r := newRig(t, edits...)
			method, path, body := c.method, c.path, c.body
			if method == "" {
				method = "POST"
			}
			if path == "" {
				path = "/hooks/github"
			}
			if body == nil {
				body = gh.body
			}
			h := http.Header{}
			if c.header != nil {
				h = c.header()
			}
			rep := r.do(method, path, h, body)
			if rep.status != c.status || rep.body.Result != ResultRefused || rep.body.Reason == "" {
				t.Fatalf("got %d %+v, want %d refused", rep.status, rep.body, c.status)
			}
			if c.status == 405 && rep.header.Get("Allow") != "POST" {
				t.Errorf("Allow %q", rep.header.Get("Allow"))
			}
			if rec := r.lastAudit(1); rec.Status != c.status || rec.Result != ResultRefused || rec.Reason == "" {
				t.Errorf("audit record %+v", rec)
			}
			if r.sink.count() != 0 {
				t.Fatal("enqueued")
			}
		})
	}
}

func TestGitLabKindMismatch(t *testing.T) {
	f := findFixture(t, GitLab, "tag_push")
	body := bytes.Replace(f.body, []byte(`"object_kind":"tag_push"`), []byte(`"object_kind":"push"`), 1)
	_, err := Parse(GitLab, f.header, body)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Tag Push Hook with object_kind push: %v", err)
	}
	h := f.clone()
	h.Set("X-Gitlab-Event", "System Hook")
	ev, err := Parse(GitLab, h, f.body)
	if err != nil || ev.Kind != KindTagPush {
		t.Fatalf("system hook tag push: %v %+v", err, ev)
	}
	if _, err := Parse(GitLab, h, body); !errors.Is(err, ErrIgnored) {
		t.Fatalf("system hook push: %v", err)
	}
	// Without Idempotency-Key the delivery id is X-Gitlab-Event-UUID.
	h = f.clone()
	h.Del("Idempotency-Key")
	if id, err := DeliveryID(GitLab, h); err != nil || id != f.header.Get("X-Gitlab-Event-UUID") {
		t.Fatalf("DeliveryID = %q, %v", id, err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Secrets: testSecrets, Allowed: allowFixtures}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"short secret":     {Secrets: map[Provider][]byte{GitHub: []byte("hunter2")}, Allowed: allowFixtures},
		"unknown provider": {Secrets: map[Provider][]byte{"bitbucket": testSecrets[GitHub]}, Allowed: allowFixtures},
		"no allow-list":    {Secrets: testSecrets},
		"negative body":    {Secrets: testSecrets, Allowed: allowFixtures, MaxBody: -1},
	} {
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error shows the secret: %v", name, err)
		}
	}
	if d := (Config{}).WithDefaults(); d.MaxBody != 1<<20 || d.Timeout == 0 {
		t.Errorf("defaults %+v", d)
	}
}

func TestMemoryReplaysExpiry(t *testing.T) {
	m := NewMemoryReplays(1)
	ctx := context.Background()
	if seen, _ := m.Seen(ctx, GitHub, "a"); seen {
		t.Fatal("fresh key seen")
	}
	// With a 1ns TTL the record has expired by the next call.
	if seen, _ := m.Seen(ctx, GitHub, "a"); seen {
		t.Fatal("expired key still seen")
	}
	m = NewMemoryReplays(0)
	m.Seen(ctx, GitHub, "a")
	if seen, _ := m.Seen(ctx, GitLab, "a"); seen {
		t.Fatal("keys are not scoped by provider")
	}
	if seen, _ := m.Seen(ctx, GitHub, "a"); !seen {
		t.Fatal("key forgotten")
	}
	m.Forget(ctx, GitHub, "a")
	if seen, _ := m.Seen(ctx, GitHub, "a"); seen {
		t.Fatal("Forget did not forget")
	}
}

// TestSecretSource: secrets asked for at each delivery. During a rotation
// the source lists the new secret and the old: a delivery signed with
// either is accepted, for every provider (GitLab compares its token);
// once the old one is gone it is refused. A source that fails refuses
// with 503 and tells the caller nothing of why; one with a short secret
// too; one with none disables the provider.
func TestSecretSource(t *testing.T) {
	rotated := []byte("a-new-webhook-secret-of-32-bytes")
	for _, tc := range []struct{ provider, kind string }{{"github", "push_tag"}, {"gitlab", "tag_push"}, {"gitea", "push_tag"}} {
		p := Provider(tc.provider)
		f := findFixture(t, p, tc.kind)
		var secrets [][]byte
		var fail error
		r := newRig(t, func(c *Config) {
			c.Secrets = nil
			c.SecretSource = func(q Provider) ([][]byte, error) {
				if q != p {
					return nil, nil
				}
				return secrets, fail
			}
		})
		secrets = [][]byte{rotated, testSecrets[p]}
		r.expect(r.deliver(f), 202, ResultAccepted)
		secrets = [][]byte{rotated}
		r.expect(r.deliver(f), 401, ResultRefused)
		secrets = [][]byte{testSecrets[p], []byte("short")}
		if rep := r.deliver(f); rep.status != 503 || strings.Contains(rep.raw, "bytes") {
			t.Errorf("%s, short secret: %d %s", p, rep.status, rep.raw)
		}
		secrets, fail = nil, errors.New("/etc/modgate/"+tc.provider+".secret: permission denied")
		if rep := r.deliver(f); rep.status != 503 || strings.Contains(rep.raw, "/etc/modgate") ||
			!strings.Contains(r.logs.String(), "/etc/modgate/"+tc.provider+".secret: permission denied") {
			t.Errorf("%s, unreadable: %d %s", p, rep.status, rep.raw)
		}
		secrets, fail = nil, nil
		r.expect(r.deliver(f), 404, ResultRefused)
		if strings.Contains(r.logs.String(), string(rotated)) || strings.Contains(r.logs.String(), string(testSecrets[p])) {
			t.Errorf("%s: a secret is in the log", p)
		}
	}
}
