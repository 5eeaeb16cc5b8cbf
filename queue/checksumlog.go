package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/module"

	"github.com/modgate/modgate/sumlog"
)

// The checksum log has exactly one writer, the process that serves it
// (modgate serve). Workers in other processes (modgate serve
// --workers-only) append and look up through it with NATS request-reply on
// these subjects, so there is one order of records whichever worker
// admitted a version.
const (
	SubjectLogAppend = "modgate.sumlog.append"
	SubjectLogLookup = "modgate.sumlog.lookup"
)

// ChecksumLog is the part of the checksum log that workers use.
type ChecksumLog interface {
	Append(ctx context.Context, m module.Version, text []byte) (int64, error)
	Lookup(ctx context.Context, m module.Version) (int64, []byte, error)
}

type logRequest struct {
	Module module.Version `json:"module"`
	Text   []byte         `json:"text,omitempty"`
}

type logReply struct {
	ID       int64  `json:"id"`
	Text     []byte `json:"text,omitempty"`
	Err      string `json:"err,omitempty"`
	NotFound bool   `json:"not_found,omitempty"`
	Conflict bool   `json:"conflict,omitempty"`
}

// logTimeout bounds one remote append or lookup (an append is a few
// fsyncs).
const logTimeout = 30 * time.Second

// ServeChecksumLog answers other processes' appends and lookups with l
// until stop is called.
func ServeChecksumLog(c *Conn, l ChecksumLog) (stop func(), err error) {
	handle := func(append bool) nats.MsgHandler {
		return func(msg *nats.Msg) {
			var req logRequest
			var rep logReply
			ctx, cancel := context.WithTimeout(context.Background(), logTimeout)
			defer cancel()
			if err := json.Unmarshal(msg.Data, &req); err != nil {
				rep.Err = "bad request: " + err.Error()
			} else if append {
				rep.ID, err = l.Append(ctx, req.Module, req.Text)
				rep.setErr(err)
			} else {
				rep.ID, rep.Text, err = l.Lookup(ctx, req.Module)
				rep.setErr(err)
			}
			data, _ := json.Marshal(rep)
			msg.Respond(data)
		}
	}
	a, err := c.nc.QueueSubscribe(SubjectLogAppend, "sumlog", handle(true))
	if err != nil {
		return nil, err
	}
	b, err := c.nc.QueueSubscribe(SubjectLogLookup, "sumlog", handle(false))
	if err != nil {
		a.Unsubscribe()
		return nil, err
	}
	return func() { a.Drain(); b.Drain() }, nil
}

func (r *logReply) setErr(err error) {
	if err == nil {
		return
	}
	r.Err = err.Error()
	r.NotFound = errors.Is(err, fs.ErrNotExist)
	r.Conflict = errors.Is(err, sumlog.ErrConflict)
}

// RemoteChecksumLog appends and looks up through the process serving the
// checksum log.
func RemoteChecksumLog(c *Conn) ChecksumLog { return remoteLog{c} }

type remoteLog struct{ c *Conn }

func (r remoteLog) Append(ctx context.Context, m module.Version, text []byte) (int64, error) {
	rep, err := r.call(ctx, SubjectLogAppend, logRequest{Module: m, Text: text})
	if err != nil {
		return 0, err
	}
	return rep.ID, nil
}

func (r remoteLog) Lookup(ctx context.Context, m module.Version) (int64, []byte, error) {
	rep, err := r.call(ctx, SubjectLogLookup, logRequest{Module: m})
	if err != nil {
		return 0, nil, err
	}
	return rep.ID, rep.Text, nil
}

func (r remoteLog) call(ctx context.Context, subject string, req logRequest) (*logReply, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, logTimeout)
	defer cancel()
	msg, err := r.c.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		// No responder: modgate serve is not running. Transient.
		return nil, fmt.Errorf("checksum log %s: %w", subject, err)
	}
	var rep logReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return nil, fmt.Errorf("checksum log %s: bad reply: %w", subject, err)
	}
	switch {
	case rep.NotFound:
		return nil, fmt.Errorf("%s: %w", req.Module, fs.ErrNotExist)
	case rep.Conflict:
		return nil, fmt.Errorf("%w: %s", sumlog.ErrConflict, rep.Err)
	case rep.Err != "":
		return nil, fmt.Errorf("checksum log: %s", rep.Err)
	}
	return &rep, nil
}

// ForgetDelivery removes a webhook delivery record, so that a delivery
// whose hand-over to the queue failed can be redelivered. Forgetting an
// absent record is not an error.
func (c *Conn) ForgetDelivery(ctx context.Context, provider, deliveryID string) error {
	err := c.deliveries.Delete(ctx, EscapeKey(provider)+"."+EscapeKey(deliveryID))
	if err != nil {
		return fmt.Errorf("queue: forget delivery %s %s: %w", provider, deliveryID, err)
	}
	return nil
}

// HasDelivery reports whether a webhook delivery id is recorded, without
// recording it.
func (c *Conn) HasDelivery(ctx context.Context, provider, deliveryID string) (bool, error) {
	_, err := c.deliveries.Get(ctx, EscapeKey(provider)+"."+EscapeKey(deliveryID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("queue: delivery %s %s: %w", provider, deliveryID, err)
	}
	return true, nil
}
