package queue

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Kinds of request.
const (
	KindAdmit    = "admit"    // admit a tag (webhook, `modgate admit --enqueue`)
	KindReverify = "reverify" // re-verify an admitted version (`modgate reverify`, schedule)
)

// Request is one event asking for an admission or a re-verification. It is
// JSON on the wire, on SubjectAdmit or SubjectReverify.
type Request struct {
	Kind    string `json:"kind"`
	Repo    string `json:"repo,omitempty"`
	Tag     string `json:"tag,omitempty"`
	Commit  string `json:"commit,omitempty"`  // the commit the tag pointed to when the event was made, if known
	Module  string `json:"module,omitempty"`  // for reverify, or when known
	Version string `json:"version,omitempty"` // for reverify, or when known
	// Source says where the request came from: "webhook:github", "cli", "schedule"…
	Source string `json:"source,omitempty"`
	// Nonce, when set, is part of the message id: a deliberate repeat of a
	// request within the dedup window (`admit --enqueue` after a policy
	// fix, or after a dead letter) sets a fresh one to be a new event.
	Nonce string `json:"nonce,omitempty"`
	// Reverify is the scope of a re-verification request: what to plan
	// (a run), or the versions of one shard of a run.
	Reverify *ReverifyScope `json:"reverify,omitempty"`

	// EventID identifies the event in verdicts, audit records and logs. Set
	// by Enqueue when empty; it may be any string (it is escaped as a key).
	EventID string    `json:"event_id"`
	Time    time.Time `json:"time"` // set by Enqueue when zero

	// Attempt is the delivery attempt, from 1, set by the workers for the
	// handler; it is not part of the message.
	Attempt int `json:"-"`
}

// subject is where requests of r's kind are published.
func (r *Request) subject() (string, error) {
	switch r.Kind {
	case KindAdmit:
		if (r.Repo == "" || r.Tag == "") && (r.Module == "" || r.Version == "" || r.Repo != "" || r.Tag != "") {
			return "", errors.New("queue: an admit request needs repo and tag, or (for a public module) module and version")
		}
		return SubjectAdmit, nil
	case KindReverify:
		if r.Reverify == nil && (r.Module == "" || r.Version == "") {
			return "", errors.New("queue: a reverify request needs a scope, or module and version")
		}
		if r.Reverify != nil && r.Reverify.Run == "" {
			return "", errors.New("queue: a reverify request needs a run id")
		}
		return SubjectReverify, nil
	}
	return "", fmt.Errorf("queue: request kind %q: want %q or %q", r.Kind, KindAdmit, KindReverify)
}

// MsgID is the request's JetStream message id (header Nats-Msg-Id): the hex
// SHA-256 of kind, repo, tag, commit, module, version and nonce, each
// preceded by its length. Within the dedup window the server stores one
// message per id, so the same tag push delivered twice is one event, while a
// tag moved to another commit is a new one. EventID, Source and Time are not
// part of it.
func MsgID(r Request) string {
	h := sha256.New()
	for _, f := range []string{r.Kind, r.Repo, r.Tag, r.Commit, r.Module, r.Version, r.Nonce} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// newEventID returns a unique, time-ordered id that is also a valid KV key.
func newEventID() string {
	var b [8]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b[:])
}

// Enqueue publishes r and returns its event id. If a request with the same
// MsgID was published within the dedup window, nothing is published,
// duplicate is true and eventID is the first request's, so a caller can wait
// for the one verdict (it is "" if that request can no longer be read). When
// Enqueue returns without error the request is stored by JetStream.
func (c *Conn) Enqueue(ctx context.Context, r Request) (eventID string, duplicate bool, err error) {
	subject, err := r.subject()
	if err != nil {
		return "", false, err
	}
	if r.EventID == "" {
		r.EventID = newEventID()
	}
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	data, err := json.Marshal(r)
	if err != nil {
		return "", false, err
	}
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, MsgID(r))
	m.Header.Set(HeaderEventID, r.EventID)
	ack, err := c.js.PublishMsg(ctx, m)
	if err != nil {
		return "", false, fmt.Errorf("queue: enqueue %s %s: %w", r.Repo, r.Tag, err)
	}
	if !ack.Duplicate {
		return r.EventID, false, nil
	}
	// The server answers a duplicate with the first message's sequence.
	first, err := c.events.GetMsg(ctx, ack.Sequence)
	if err != nil {
		c.log.Warn("queue: duplicate request, original not readable", "seq", ack.Sequence, "err", err)
		return "", true, nil
	}
	return first.Header.Get(HeaderEventID), true, nil
}

// ReverifyScope says what a re-verification request covers. A request
// without Versions plans a run: the worker lists the admitted versions in
// scope (all, or Module, or Module@Version, or those admitted since Since)
// and enqueues them as shards, requests with Versions, which workers
// re-verify. Run and the shard's index make each request's Nonce, so a
// run's requests are deduplicated and two runs never are.
type ReverifyScope struct {
	Run   string    `json:"run"`
	All   bool      `json:"all,omitempty"`
	Since time.Time `json:"since,omitzero"`
	// Deep regenerates SBOMs too.
	Deep bool `json:"deep,omitempty"`
	// Versions are module@version strings: a shard.
	Versions []string `json:"versions,omitempty"`
	// Shard is the shard's index in its run, from 0; Shards the count.
	Shard  int `json:"shard,omitempty"`
	Shards int `json:"shards,omitempty"`
}
