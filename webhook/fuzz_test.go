package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/modgate/modgate/mirror"
)

func FuzzParseGitHub(f *testing.F) { fuzzParse(f, GitHub) }
func FuzzParseGitLab(f *testing.F) { fuzzParse(f, GitLab) }
func FuzzParseGitea(f *testing.F)  { fuzzParse(f, Gitea) }

// fuzzParse feeds Parse arbitrary event names, content types and bodies,
// seeded with the provider's fixtures. Parse must not panic, must fail only
// with its sentinel errors, and every event it returns must be one the rest
// of modgate can trust.
func fuzzParse(f *testing.F, p Provider) {
	for _, fx := range loadFixtures(f) {
		if fx.provider == p {
			f.Add(fx.header.Get(eventHeaders[p]), fx.header.Get("Content-Type"), trimPayload(f, fx))
		}
	}
	f.Add("push", "application/x-www-form-urlencoded", []byte("payload=%7B%7D"))
	f.Fuzz(func(t *testing.T, event, contentType string, body []byte) {
		h := http.Header{}
		h.Set(eventHeaders[p], event)
		h.Set("Content-Type", contentType)
		h.Set(deliveryHeaders[p][0], "0b6e4c2a-8f1d-4e7b-a3c5-9d2f6b8e1a4c")
		ev, err := Parse(p, h, body)
		if err != nil {
			if ev != nil {
				t.Fatalf("event and error: %+v, %v", ev, err)
			}
			if !errors.Is(err, ErrIgnored) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrContentType) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if ev.Provider != p || ev.DeliveryID != "0b6e4c2a-8f1d-4e7b-a3c5-9d2f6b8e1a4c" {
			t.Fatalf("provider/delivery %q %q", ev.Provider, ev.DeliveryID)
		}
		if err := mirror.CheckTagName(ev.Tag); err != nil {
			t.Fatalf("accepted tag: %v", err)
		}
		switch ev.Kind {
		case KindTagPush:
			if !isObjectID(ev.Object) {
				t.Fatalf("tag push without object id: %+v", ev)
			}
		case KindTagCreate:
		case KindTagDelete:
			if ev.Object != "" || ev.Commit != "" {
				t.Fatalf("deletion with object ids: %+v", ev)
			}
		default:
			t.Fatalf("kind %q", ev.Kind)
		}
		if len(ev.RepoURLs) == 0 || ev.RepoName == "" {
			t.Fatalf("no repository: %+v", ev)
		}
		for _, s := range append([]string{ev.RepoName, ev.Sender, ev.Tag}, ev.RepoURLs...) {
			if strings.ContainsAny(s, "\x00\n\r\x1b") {
				t.Fatalf("control character in %q", s)
			}
		}
	})
}

// FuzzVerify: Verify never panics and accepts a delivery only with the MAC
// (GitHub, Gitea) or token (GitLab) that the secret gives.
func FuzzVerify(f *testing.F) {
	// Small bodies: what matters here is the header, and large inputs make
	// the fuzzer spend its time minimizing.
	body := []byte(`{"ref":"refs/tags/v1.2.3"}`)
	for i, p := range Providers {
		secret := testSecrets[p]
		f.Add(uint8(i), secret, body, "X-Hub-Signature-256", "sha256="+Sign(secret, body))
		f.Add(uint8(i), secret, body, "X-Gitea-Signature", Sign(secret, body))
		f.Add(uint8(i), secret, body, "X-Gitlab-Token", string(secret))
	}
	f.Add(uint8(0), []byte{}, []byte{}, "X-Hub-Signature-256", "sha256=")
	f.Add(uint8(2), []byte("k"), []byte("{}"), "X-Gitea-Signature", strings.Repeat("0", 64))
	f.Fuzz(func(t *testing.T, pi uint8, secret, body []byte, header, value string) {
		p := Providers[int(pi)%len(Providers)]
		h := http.Header{}
		h.Set(header, value)
		err := Verify(p, h, body, secret)
		if err != nil {
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("error is not ErrUnauthenticated: %v", err)
			}
			// The message must not depend on the secret's value: with
			// another secret of the same length it is the same.
			if len(secret) > 0 {
				other := bytes.Repeat([]byte{'x'}, len(secret))
				if bytes.Equal(other, secret) {
					other[0] = 'y'
				}
				if err2 := Verify(p, h, body, other); err2 != nil && err2.Error() != err.Error() {
					t.Fatalf("error depends on the secret: %q vs %q", err, err2)
				}
			}
		} else {
			if len(secret) == 0 {
				t.Fatal("accepted with no secret")
			}
			mac := Sign(secret, body)
			var ok bool
			switch p {
			case GitHub:
				ok = http.CanonicalHeaderKey(header) == "X-Hub-Signature-256" && strings.EqualFold(value, "sha256="+mac) && strings.HasPrefix(value, "sha256=")
			case Gitea:
				ok = http.CanonicalHeaderKey(header) == "X-Gitea-Signature" && strings.EqualFold(value, mac) ||
					http.CanonicalHeaderKey(header) == "X-Hub-Signature-256" && strings.EqualFold(value, "sha256="+mac) && strings.HasPrefix(value, "sha256=")
			case GitLab:
				ok = http.CanonicalHeaderKey(header) == "X-Gitlab-Token" && value == string(secret)
			}
			if !ok {
				t.Fatalf("%s accepted %s: %q for secret %q body %q", p, header, value, secret, body)
			}
		}
		// And the right signature is always accepted.
		if len(secret) == 0 {
			return
		}
		good := http.Header{}
		switch p {
		case GitHub:
			good.Set("X-Hub-Signature-256", "sha256="+Sign(secret, body))
		case Gitea:
			good.Set("X-Gitea-Signature", Sign(secret, body))
		case GitLab:
			good.Set("X-Gitlab-Token", string(secret))
		}
		if err := Verify(p, good, body, secret); err != nil {
			t.Fatalf("right signature refused: %v", err)
		}
	})
}

// trimPayload returns a fixture's body with only the JSON fields some
// provider's parser reads, so that the fuzzer mutates what matters and
// minimizes quickly.
func trimPayload(t testing.TB, fx fixture) []byte {
	keep := map[string]bool{
		"ref": true, "before": true, "after": true, "created": true, "deleted": true,
		"head_commit": true, "id": true, "repository": true, "full_name": true,
		"html_url": true, "clone_url": true, "ssh_url": true, "sender": true,
		"login": true, "username": true, "ref_type": true, "sha": true,
		"object_kind": true, "checkout_sha": true, "user_username": true,
		"user_name": true, "project": true, "path_with_namespace": true,
		"web_url": true, "git_http_url": true, "git_ssh_url": true,
	}
	var trim func(v any) any
	trim = func(v any) any {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		for k, e := range m {
			if !keep[k] {
				delete(m, k)
			} else {
				m[k] = trim(e)
			}
		}
		return m
	}
	payload := fx.body
	form := strings.HasSuffix(fx.header.Get("Content-Type"), "urlencoded")
	if form {
		vals, err := url.ParseQuery(string(payload))
		if err != nil {
			t.Fatal(err)
		}
		payload = []byte(vals.Get("payload"))
	}
	var v any
	if err := json.Unmarshal(payload, &v); err != nil {
		t.Fatalf("%s: %v", fx, err)
	}
	out, err := json.Marshal(trim(v))
	if err != nil {
		t.Fatal(err)
	}
	if form {
		return []byte(url.Values{"payload": {string(out)}}.Encode())
	}
	return out
}
