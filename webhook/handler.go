package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Config configures the webhook endpoints.
type Config struct {
	// Secrets holds each provider's webhook secret (GitLab: the secret
	// token). A provider without a secret is disabled: its endpoint answers
	// 404, as if it did not exist.
	Secrets map[Provider][]byte
	// SecretSource, when set, is asked for a provider's secrets at each
	// delivery instead of Secrets: a delivery that any of them
	// authenticates is accepted (a rotation lists the new and the old).
	// None disables the provider (404); an error refuses the delivery
	// with 503 (the error goes to the log, not to the caller).
	SecretSource func(Provider) ([][]byte, error)
	// MaxBody bounds a request body; larger bodies are answered 413 and not
	// read further. 1 MiB when zero; tag events are a few kilobytes.
	MaxBody int64
	// Allowed is the configured allow-list: it returns the normalized
	// repository a tag event's URLs match, or ok=false. Nil allows nothing.
	Allowed func(repoURLs []string) (repo string, ok bool)
	// Timeout bounds each call to Replays and Sink; 10s when zero. These
	// calls do not end when the client disconnects, so that a delivery the
	// provider stopped waiting for is still either handed over or forgotten.
	Timeout time.Duration
}

// MinSecretLen is the shortest secret Validate accepts: an HMAC key or token
// that can be guessed offline from one captured delivery protects nothing.
const MinSecretLen = 16

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxBody == 0 {
		c.MaxBody = 1 << 20
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	return c
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	for p, s := range c.Secrets {
		if !p.valid() {
			return fmt.Errorf("webhook: secret for unknown provider %s (want github, gitlab or gitea)", quote(string(p)))
		}
		if len(s) > 0 && len(s) < MinSecretLen {
			return fmt.Errorf("webhook: %s secret is %d bytes; use at least %d random bytes", p, len(s), MinSecretLen)
		}
	}
	if c.MaxBody < 0 {
		return fmt.Errorf("webhook: negative MaxBody %d", c.MaxBody)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("webhook: negative Timeout %v", c.Timeout)
	}
	if c.Allowed == nil {
		return errors.New("webhook: no repository allow-list: every tag event would be refused")
	}
	return nil
}

// Sink receives accepted tag events: the admission queue.
type Sink interface {
	// Enqueue hands ev, from the allowed repository repo, to the workers and
	// returns the id of the queued event. When it returns nil the event must
	// be durable. It must be idempotent for the same tag event: the handler
	// records a delivery against replays only after Enqueue succeeded, so
	// copies racing each other, or a redelivery after a crash in between,
	// enqueue the same event again (the NATS queue merges them by message
	// id). An error is treated as transient: the delivery is answered
	// 503 and its replay records are forgotten so that a redelivery is
	// accepted. It is called concurrently.
	Enqueue(ctx context.Context, ev *Event, repo string) (eventID string, err error)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, ev *Event, repo string) (eventID string, err error)

// Enqueue calls f.
func (f SinkFunc) Enqueue(ctx context.Context, ev *Event, repo string) (string, error) {
	return f(ctx, ev, repo)
}

// Replays records the deliveries already received.
//
// key is either a delivery id (letters, digits, '-' and '_') or, for
// providers that sign the body, "sha256." followed by the hex digest of the
// body; the two never collide. Both are safe as NATS KV keys. Keys are
// scoped by provider. An implementation may expire keys after a window long
// enough to outlast the providers' redeliveries (days); a replay older than
// that is accepted and is a no-op for the pipeline.
type Replays interface {
	// Seen records key and reports whether it was already recorded. It must
	// be atomic (create-if-absent): of concurrent calls with one key,
	// exactly one returns false. The record must be durable when it returns.
	Seen(ctx context.Context, p Provider, key string) (bool, error)
	// Has reports whether key is recorded, without recording it.
	Has(ctx context.Context, p Provider, key string) (bool, error)
	// Forget removes key, so that a delivery whose hand-over failed can be
	// redelivered. Forgetting an absent key is not an error.
	Forget(ctx context.Context, p Provider, key string) error
}

// Auditor records what became of every request to the webhook endpoints:
// exactly one record per request.
type Auditor interface {
	// Audit records rec. It is called concurrently; failures are the
	// implementation's to report.
	Audit(ctx context.Context, rec AuditRecord)
}

// AuditorFunc adapts a function to Auditor.
type AuditorFunc func(ctx context.Context, rec AuditRecord)

// Audit calls f.
func (f AuditorFunc) Audit(ctx context.Context, rec AuditRecord) { f(ctx, rec) }

// Results of a delivery, in responses and audit records.
const (
	ResultAccepted  = "accepted"  // enqueued (202)
	ResultRecorded  = "recorded"  // a tag deletion, audited and not enqueued (202)
	ResultIgnored   = "ignored"   // not a tag event (200)
	ResultDuplicate = "duplicate" // a delivery already received (200)
	ResultRefused   = "refused"   // 4xx
	ResultFailed    = "failed"    // 5xx: transient, the provider may retry
)

// AuditRecord is what the audit trail keeps of one request. It never holds
// the secret, the signature or the body.
type AuditRecord struct {
	Time     time.Time `json:"time"`
	Provider Provider  `json:"provider,omitempty"`
	// DeliveryID is the delivery id; before authentication, the id the
	// request claims ("invalid:…" if it is malformed).
	DeliveryID string `json:"delivery_id,omitempty"`
	Result     string `json:"result"`
	Status     int    `json:"status"`
	Reason     string `json:"reason,omitempty"`
	// Event is the parsed event, for results after parsing.
	Event *Event `json:"event,omitempty"`
	// Repo is the allowed repository the event matched.
	Repo       string `json:"repo,omitempty"`
	EventID    string `json:"event_id,omitempty"`
	RemoteAddr string `json:"remote_addr,omitempty"`
}

// response is the body of every answer.
type response struct {
	Result  string `json:"result"`
	Reason  string `json:"reason,omitempty"`
	EventID string `json:"event_id,omitempty"`
}

type handler struct {
	cfg     Config
	sink    Sink
	replays Replays
	audit   Auditor
	log     *slog.Logger
	now     func() time.Time
}

// NewHandler returns the handler for POST /hooks/github, /hooks/gitlab and
// /hooks/gitea. Mount it at /hooks/ without stripping the prefix. sink,
// replays and audit must not be nil; log may be.
//
// Status codes: 202 accepted (with the event id) or tag deletion recorded;
// 200 ignored or duplicate; 400 malformed; 401 unauthenticated; 403
// repository not allowed; 404 unknown or disabled provider; 405 not POST;
// 413 body over MaxBody; 415 not JSON (GitHub: or form); 503 replay store or
// queue unavailable.
func NewHandler(cfg Config, sink Sink, replays Replays, audit Auditor, log *slog.Logger) http.Handler {
	if sink == nil || replays == nil || audit == nil {
		panic("webhook.NewHandler: nil Sink, Replays or Auditor")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &handler{cfg: cfg.WithDefaults(), sink: sink, replays: replays, audit: audit, log: log, now: time.Now}
}

// outcome is how one request ends.
type outcome struct {
	status int
	result string
	reason string
	err    error // for the log only
}

func refused(status int, format string, args ...any) outcome {
	return outcome{status: status, result: ResultRefused, reason: fmt.Sprintf(format, args...)}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := AuditRecord{Time: h.now().UTC(), RemoteAddr: r.RemoteAddr}
	out := h.serve(w, r, &rec)
	rec.Result, rec.Status, rec.Reason = out.result, out.status, out.reason

	log := h.log.With("provider", string(rec.Provider), "delivery", rec.DeliveryID, "remote", r.RemoteAddr)
	attrs := []any{"status", out.status, "result", out.result}
	if out.reason != "" {
		attrs = append(attrs, "reason", out.reason)
	}
	if ev := rec.Event; ev != nil {
		attrs = append(attrs, "kind", ev.Kind, "tag", ev.Tag, "repo_name", ev.RepoName, "sender", ev.Sender)
	}
	if rec.Repo != "" {
		attrs = append(attrs, "repo", rec.Repo)
	}
	if rec.EventID != "" {
		attrs = append(attrs, "event_id", rec.EventID)
	}
	if out.err != nil {
		attrs = append(attrs, "err", out.err.Error())
	}
	level := slog.LevelInfo
	switch {
	case out.status >= 500:
		level = slog.LevelError
	case out.status >= 400:
		level = slog.LevelWarn
	}
	log.Log(r.Context(), level, "webhook delivery", attrs...)

	h.audit.Audit(context.WithoutCancel(r.Context()), rec)

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(out.status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(response{Result: out.result, Reason: out.reason, EventID: rec.EventID})
}

// serve handles one request, filling rec as it learns more, and says how
// it ends. The order matters: nothing from the body is read, and nothing is
// recorded, before the signature is verified.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, rec *AuditRecord) outcome {
	p, body, out, ok := h.receive(w, r, rec)
	if !ok {
		return out
	}
	id, err := DeliveryID(p, r.Header)
	if err != nil {
		return refused(http.StatusBadRequest, "%v", err)
	}
	rec.DeliveryID = id
	// Replays and Sink calls outlive a client that stops waiting, so that
	// a delivery is either handed over or forgotten, never half done.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.Timeout)
	defer cancel()
	return h.admit(ctx, p, id, r.Header, body, rec)
}

// receive checks the endpoint, method and content type, reads the body
// within MaxBody and verifies its signature.
func (h *handler) receive(w http.ResponseWriter, r *http.Request, rec *AuditRecord) (Provider, []byte, outcome, bool) {
	p, ok := providerFromPath(r.URL.Path)
	if !ok {
		return "", nil, refused(http.StatusNotFound, "no webhook endpoint at %s", quote(r.URL.Path)), false
	}
	rec.Provider = p
	rec.DeliveryID = claimedID(p, r.Header)
	secrets, err := h.secrets(p)
	if err != nil {
		// The details (a path, a file mode) are for the log: the caller
		// is not authenticated yet.
		out := refused(http.StatusServiceUnavailable, "%s webhook secret cannot be read (modgate's log says why)", p)
		out.err = err
		return p, nil, out, false
	}
	if len(secrets) == 0 {
		return p, nil, refused(http.StatusNotFound, "%s webhooks are not enabled", p), false
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return p, nil, refused(http.StatusMethodNotAllowed, "method %s not allowed; webhooks are POST", quote(r.Method)), false
	}
	if _, err := checkContentType(p, r.Header); err != nil {
		return p, nil, refused(http.StatusUnsupportedMediaType, "%v", err), false
	}
	max := h.cfg.MaxBody
	if r.ContentLength > max {
		return p, nil, refused(http.StatusRequestEntityTooLarge, "body of %d bytes is over the limit of %d", r.ContentLength, max), false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
		return p, nil, refused(http.StatusRequestEntityTooLarge, "body is over the limit of %d bytes", max), false
	} else if err != nil {
		return p, nil, refused(http.StatusBadRequest, "reading body: %v", err), false
	}
	if err := Verify(p, r.Header, body, secrets...); err != nil {
		return p, nil, refused(http.StatusUnauthorized, "%v", err), false
	}
	return p, body, outcome{}, true
}

// secrets are provider p's secrets now: from SecretSource, each at least
// MinSecretLen bytes, or from Secrets.
func (h *handler) secrets(p Provider) ([][]byte, error) {
	if h.cfg.SecretSource == nil {
		if s := h.cfg.Secrets[p]; len(s) > 0 {
			return [][]byte{s}, nil
		}
		return nil, nil
	}
	secrets, err := h.cfg.SecretSource(p)
	if err != nil {
		return nil, err
	}
	for i, s := range secrets {
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("secret %d of %d is %d bytes; use at least %d random bytes", i+1, len(secrets), len(s), MinSecretLen)
		}
	}
	return secrets, nil
}

// admit takes an authenticated delivery through replay refusal, parsing and
// the allow-list to the Sink.
func (h *handler) admit(ctx context.Context, p Provider, id string, header http.Header, body []byte, rec *AuditRecord) outcome {
	keys := []string{id}
	if p != GitLab {
		// The delivery id is not signed; the body is.
		sum := sha256.Sum256(body)
		keys = append(keys, "sha256."+hex.EncodeToString(sum[:]))
	}
	// The replay record is written only once the event is safely enqueued:
	// a crash between the two must not turn the provider's redelivery into
	// a "duplicate" of an event that never reached the queue. Until then
	// only a read guards against replays; deliveries racing past it (or a
	// redelivery after a crash) enqueue the same request again, which the
	// queue's message-id deduplication makes one event.
	if dup, err := h.known(ctx, p, keys); err != nil {
		return outcome{status: http.StatusServiceUnavailable, result: ResultFailed,
			reason: "replay store unavailable; retry later", err: err}
	} else if dup != "" {
		return outcome{status: http.StatusOK, result: ResultDuplicate, reason: dup}
	}
	ev, err := Parse(p, header, body)
	switch {
	case errors.Is(err, ErrIgnored):
		return outcome{status: http.StatusOK, result: ResultIgnored, reason: err.Error()}
	case errors.Is(err, ErrContentType):
		return refused(http.StatusUnsupportedMediaType, "%v", err)
	case err != nil:
		return refused(http.StatusBadRequest, "%v", err)
	}
	rec.Event = ev

	repo, ok := "", false
	if h.cfg.Allowed != nil {
		repo, ok = h.cfg.Allowed(ev.RepoURLs)
	}
	if !ok {
		return refused(http.StatusForbidden, "repository %s (%s) is not allowed by the configuration",
			quote(ev.RepoName), strings.Join(ev.RepoURLs, ", "))
	}
	rec.Repo = repo

	if ev.Kind == KindTagDelete {
		return outcome{status: http.StatusAccepted, result: ResultRecorded,
			reason: fmt.Sprintf("deletion of tag %s recorded; nothing is unpublished", quote(ev.Tag))}
	}

	eventID, err := h.sink.Enqueue(ctx, ev, repo)
	if err != nil {
		return outcome{status: http.StatusServiceUnavailable, result: ResultFailed,
			reason: "queue unavailable; retry later", err: err}
	}
	rec.EventID = eventID
	dup, recorded, err := h.remember(ctx, p, keys)
	if err != nil {
		// Enqueued, but not recorded against replays: a redelivery is
		// deduplicated by the queue within its window. Accept.
		h.log.Warn("webhook: replay record not written", "provider", p, "delivery", id, "err", err)
		return outcome{status: http.StatusAccepted, result: ResultAccepted}
	}
	if dup != "" {
		// A copy raced this one past the read; the queue made them one event.
		h.forget(p, id, recorded)
		return outcome{status: http.StatusOK, result: ResultDuplicate, reason: dup}
	}
	return outcome{status: http.StatusAccepted, result: ResultAccepted}
}

// known reports why the delivery is a duplicate of one already recorded,
// or "".
func (h *handler) known(ctx context.Context, p Provider, keys []string) (string, error) {
	for _, k := range keys {
		seen, err := h.replays.Has(ctx, p, k)
		if err != nil {
			return "", fmt.Errorf("replay store: %w", err)
		}
		if seen {
			if k == keys[0] {
				return "delivery id already received", nil
			}
			return "the same signed body was already received under another delivery id", nil
		}
	}
	return "", nil
}

// remember records keys in order until one was already seen, and returns
// why the delivery is a duplicate ("" if it is not) and which keys it
// recorded.
func (h *handler) remember(ctx context.Context, p Provider, keys []string) (dup string, recorded []string, err error) {
	for _, k := range keys {
		seen, err := h.replays.Seen(ctx, p, k)
		if err != nil {
			return "", recorded, fmt.Errorf("replay store: %w", err)
		}
		if seen {
			if k == keys[0] {
				return "delivery id already received", recorded, nil
			}
			return "the same signed body was already received under another delivery id", recorded, nil
		}
		recorded = append(recorded, k)
	}
	return "", recorded, nil
}

// forget undoes remember after a transient failure, so that the provider's
// redelivery is not mistaken for a replay.
func (h *handler) forget(p Provider, id string, keys []string) {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
	defer cancel()
	for _, k := range keys {
		if err := h.replays.Forget(ctx, p, k); err != nil {
			h.log.Error("webhook: cannot forget replay record; a redelivery will be taken for a duplicate, use modgate admit",
				"provider", string(p), "delivery", id, "err", err.Error())
		}
	}
}

// providerFromPath returns the provider for /hooks/<provider>.
func providerFromPath(path string) (Provider, bool) {
	name, ok := strings.CutPrefix(path, "/hooks/")
	if !ok {
		return "", false
	}
	p := Provider(name)
	return p, p.valid()
}
