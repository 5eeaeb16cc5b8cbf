package webhook

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// Parse reads an authenticated delivery: h are its headers, body its raw
// body. It returns the tag event, or an error wrapping ErrIgnored (not a tag
// event: branch pushes, pings, other event types), ErrContentType or
// ErrInvalid, each with the reason. Parse does not authenticate; call Verify
// first.
func Parse(p Provider, h http.Header, body []byte) (*Event, error) {
	if !p.valid() {
		return nil, fmt.Errorf("%w: unknown provider %s", ErrInvalid, quote(string(p)))
	}
	id, err := DeliveryID(p, h)
	if err != nil {
		return nil, err
	}
	payload, err := payloadOf(p, h, body)
	if err != nil {
		return nil, err
	}
	name := eventHeaders[p]
	vals := h.Values(name)
	if len(vals) != 1 || vals[0] == "" {
		return nil, invalidf(p, "want one %s header, have %d", name, len(vals))
	}
	kind := vals[0]
	var ev *Event
	switch p {
	case GitHub:
		ev, err = parseGitHub(kind, payload)
	case GitLab:
		ev, err = parseGitLab(kind, payload)
	case Gitea:
		ev, err = parseGitea(kind, payload)
	}
	if err != nil {
		return nil, err
	}
	ev.Provider = p
	ev.DeliveryID = id
	if err := ev.validate(); err != nil {
		return nil, err
	}
	return ev, nil
}

// checkContentType says whether modgate reads p's deliveries in the
// encoding h declares. JSON always; GitHub's form encoding too (the default
// when a GitHub webhook is created in the web UI), because GitHub signs the
// form-encoded body as sent. Gitea's form encoding is refused: Gitea signs
// the JSON inside the form rather than the body, so the body would have to
// be decoded before it is authenticated.
func checkContentType(p Provider, h http.Header) (form bool, err error) {
	ct := h.Get("Content-Type")
	if ct == "" {
		return false, fmt.Errorf("%s webhook: %w: missing Content-Type; configure the webhook to send application/json", p, ErrContentType)
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false, fmt.Errorf("%s webhook: %w: %s: %v", p, ErrContentType, quote(ct), err)
	}
	switch {
	case mt == "application/json":
		return false, nil
	case mt == "application/x-www-form-urlencoded" && p == GitHub:
		return true, nil
	}
	return false, fmt.Errorf("%s webhook: %w: %s; configure the webhook to send application/json", p, ErrContentType, quote(mt))
}

// payloadOf returns the JSON payload of a delivery.
func payloadOf(p Provider, h http.Header, body []byte) ([]byte, error) {
	form, err := checkContentType(p, h)
	if err != nil {
		return nil, err
	}
	if !form {
		return body, nil
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, invalidf(p, "form body: %v", err)
	}
	if len(vals) != 1 || len(vals["payload"]) != 1 {
		return nil, invalidf(p, "form body must have exactly one field, payload")
	}
	return []byte(vals["payload"][0]), nil
}

func decode(p Provider, event string, payload []byte, v any) error {
	if err := json.Unmarshal(payload, v); err != nil {
		return invalidf(p, "%s payload: %v", quote(event), err)
	}
	return nil
}

// refTag returns the tag named by a full ref, or ok=false for another ref.
func refTag(ref string) (tag string, ok bool) {
	return strings.CutPrefix(ref, "refs/tags/")
}

// shortTag returns the tag named by a create/delete event's ref, which the
// providers send without "refs/tags/"; a full ref is accepted too.
func shortTag(ref string) string {
	if tag, ok := refTag(ref); ok {
		return tag
	}
	return ref
}

// pushKind classifies a push to a tag ref from its new value.
func pushKind(deleted bool, after string) string {
	if deleted || isZeroSHA(after) {
		return KindTagDelete
	}
	return KindTagPush
}
