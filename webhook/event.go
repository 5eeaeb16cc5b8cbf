package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/modgate/modgate/mirror"
)

// Provider names a git host whose webhooks modgate understands.
type Provider string

// The providers, as they appear in the endpoint path /hooks/<provider>.
const (
	GitHub Provider = "github"
	GitLab Provider = "gitlab"
	Gitea  Provider = "gitea"
)

// Providers lists every supported provider.
var Providers = []Provider{GitHub, GitLab, Gitea}

func (p Provider) valid() bool { return p == GitHub || p == GitLab || p == Gitea }

// Event kinds.
const (
	KindTagPush   = "tag_push"   // a push that created or moved a tag
	KindTagCreate = "tag_create" // a "create" event for a tag
	KindTagDelete = "tag_delete" // a tag was deleted
)

// Event is one tag event from a git host, after authentication. Every field
// has been checked: the tag is a name modgate will pass to git, object ids
// are hex, and no string carries control characters.
type Event struct {
	Provider Provider `json:"provider"`
	// DeliveryID is the provider's id for this delivery (X-GitHub-Delivery,
	// X-Gitea-Delivery, GitLab's Idempotency-Key or X-Gitlab-Event-UUID).
	DeliveryID string `json:"delivery_id"`
	// Kind is KindTagPush, KindTagCreate or KindTagDelete.
	Kind string `json:"kind"`
	// Tag is the tag name without "refs/tags/".
	Tag string `json:"tag"`
	// Commit is the commit the tag points to, where the payload names it
	// (GitHub and Gitea head_commit.id, GitLab checkout_sha); "" otherwise.
	Commit string `json:"commit,omitempty"`
	// Object is the new value of the tag ref where the payload names it
	// ("after"; Gitea create "sha"): the tag object for an annotated tag, the
	// commit for a lightweight one; "" for deletions and GitHub create events.
	Object string `json:"object,omitempty"`
	// RepoURLs are the clone URLs the payload names (https, ssh, and the web
	// URL with and without ".git"), to match against the allow-list.
	RepoURLs []string `json:"repo_urls"`
	// RepoName is "owner/name" (GitLab: path_with_namespace), for logs.
	RepoName string `json:"repo_name"`
	// Sender is the account that caused the event, for logs.
	Sender string `json:"sender,omitempty"`
}

var (
	// ErrIgnored reports a well-formed, authenticated delivery that is not a
	// tag event: a branch push, a ping, another event type.
	ErrIgnored = errors.New("ignored")
	// ErrInvalid reports a delivery that is malformed or names something
	// modgate refuses (a hostile tag name, a missing delivery id).
	ErrInvalid = errors.New("invalid delivery")
	// ErrUnauthenticated reports a delivery whose signature or token is
	// missing or wrong, or a provider with no secret configured.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrContentType reports a body encoding modgate does not accept.
	ErrContentType = errors.New("unsupported content type")
)

func ignoredf(p Provider, format string, args ...any) error {
	return fmt.Errorf("%s webhook: %w: %s", p, ErrIgnored, fmt.Sprintf(format, args...))
}

func invalidf(p Provider, format string, args ...any) error {
	return fmt.Errorf("%s webhook: %w: %s", p, ErrInvalid, fmt.Sprintf(format, args...))
}

// quote quotes s for an error message, cut to a length that keeps a hostile
// value from filling a log line.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// Limits on payload strings. Real values are far shorter.
const (
	maxNameLen = 256
	maxURLLen  = 2048
	maxIDLen   = 128
)

func isZeroSHA(s string) bool {
	return (len(s) == 40 || len(s) == 64) && strings.Trim(s, "0") == ""
}

// isObjectID reports whether s is a SHA-1 or SHA-256 git object id.
func isObjectID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkText refuses strings that could not be a real name: too long, not
// UTF-8, or carrying control characters (which would forge log lines).
func checkText(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s is longer than %d bytes", what, max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not UTF-8", what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' ||
			(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') {
			return fmt.Errorf("%s %s contains control or bidirectional-override characters", what, quote(s))
		}
	}
	return nil
}

// checkURL refuses URLs that are too long or contain spaces or control
// characters; whether a URL is allowed is the allow-list's business.
func checkURL(s string) error {
	if err := checkText("repository URL", s, maxURLLen); err != nil {
		return err
	}
	if strings.ContainsAny(s, " \t") {
		return fmt.Errorf("repository URL %s contains spaces", quote(s))
	}
	return nil
}

// repoURLs collects the non-empty URLs in order, without duplicates, adding
// web+".git" for each web URL the payload names.
func repoURLs(clone []string, web ...string) []string {
	var out []string
	add := func(u string) {
		if u == "" {
			return
		}
		for _, v := range out {
			if v == u {
				return
			}
		}
		out = append(out, u)
	}
	for _, u := range clone {
		add(u)
	}
	for _, u := range web {
		if u == "" {
			continue
		}
		add(u)
		if !strings.HasSuffix(u, ".git") {
			add(strings.TrimSuffix(u, "/") + ".git")
		}
	}
	return out
}

// validate checks what every provider's parser produced.
func (ev *Event) validate() error {
	p := ev.Provider
	switch ev.Kind {
	case KindTagPush, KindTagCreate, KindTagDelete:
	default:
		return invalidf(p, "unknown event kind %s", quote(ev.Kind))
	}
	if err := mirror.CheckTagName(ev.Tag); err != nil {
		return fmt.Errorf("%s webhook: %w: %w", p, ErrInvalid, err)
	}
	if ev.Kind == KindTagPush && ev.Object == "" {
		return invalidf(p, "tag %s: push names no new object id", quote(ev.Tag))
	}
	for _, f := range []struct{ name, v string }{{"object id", ev.Object}, {"commit id", ev.Commit}} {
		if f.v != "" && (!isObjectID(f.v) || isZeroSHA(f.v)) {
			return invalidf(p, "tag %s: %s %s is not a git object id", quote(ev.Tag), f.name, quote(f.v))
		}
	}
	if len(ev.RepoURLs) == 0 {
		return invalidf(p, "tag %s: payload names no repository URL", quote(ev.Tag))
	}
	if len(ev.RepoURLs) > 8 {
		return invalidf(p, "tag %s: payload names %d repository URLs", quote(ev.Tag), len(ev.RepoURLs))
	}
	for _, u := range ev.RepoURLs {
		if err := checkURL(u); err != nil {
			return invalidf(p, "tag %s: %v", quote(ev.Tag), err)
		}
	}
	if ev.RepoName == "" {
		return invalidf(p, "tag %s: payload names no repository", quote(ev.Tag))
	}
	if err := checkText("repository name", ev.RepoName, maxNameLen); err != nil {
		return invalidf(p, "tag %s: %v", quote(ev.Tag), err)
	}
	if err := checkText("sender", ev.Sender, maxNameLen); err != nil {
		return invalidf(p, "tag %s: %v", quote(ev.Tag), err)
	}
	return nil
}

// deliveryHeaders are the headers that carry a provider's delivery id, in
// order of preference. GitLab's Idempotency-Key (GitLab 17.4 and later) is
// documented to stay the same across retries; X-Gitlab-Event-UUID is the
// older per-event id.
var deliveryHeaders = map[Provider][]string{
	GitHub: {"X-GitHub-Delivery"},
	GitLab: {"Idempotency-Key", "X-Gitlab-Event-UUID"},
	Gitea:  {"X-Gitea-Delivery"},
}

// eventHeaders name the header that says which event a delivery is.
var eventHeaders = map[Provider]string{
	GitHub: "X-GitHub-Event",
	GitLab: "X-Gitlab-Event",
	Gitea:  "X-Gitea-Event",
}

// DeliveryID returns the provider's id for the delivery in h. It is
// required: every provider sends one, and without it a replay could not be
// recognised. Ids are UUID-like: 1 to 128 letters, digits, '-' or '_'.
func DeliveryID(p Provider, h http.Header) (string, error) {
	names, ok := deliveryHeaders[p]
	if !ok {
		return "", fmt.Errorf("%w: unknown provider %s", ErrInvalid, quote(string(p)))
	}
	for _, name := range names {
		vals := h.Values(name)
		if len(vals) == 0 {
			continue
		}
		if len(vals) > 1 {
			return "", invalidf(p, "%d %s headers", len(vals), name)
		}
		if err := checkDeliveryID(vals[0]); err != nil {
			return "", invalidf(p, "%s: %v", name, err)
		}
		return vals[0], nil
	}
	return "", invalidf(p, "missing delivery id header (%s)", strings.Join(names, " or "))
}

func checkDeliveryID(id string) error {
	if id == "" {
		return errors.New("empty")
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("longer than %d bytes", maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%s has characters other than letters, digits, '-' and '_'", quote(id))
		}
	}
	return nil
}

// claimedID is the delivery id a request claims, fit for a log line or an
// audit record before the request is authenticated.
func claimedID(p Provider, h http.Header) string {
	for _, name := range deliveryHeaders[p] {
		if v := h.Get(name); v != "" {
			if checkDeliveryID(v) == nil {
				return v
			}
			return "invalid:" + quote(v)
		}
	}
	return ""
}
