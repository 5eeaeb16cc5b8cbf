package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotFound is returned when there is no verdict for a key or event.
var ErrNotFound = errors.New("queue: no verdict")

// Record is one recorded verdict: the value in EventVerdictsBucket and
// VerdictsBucket, the payload of result events and of dead letters.
type Record struct {
	EventID string    `json:"event_id"`
	Key     string    `json:"key,omitempty"` // module@version, when known
	Result  string    `json:"result"`        // admitted, duplicate, rejected, quarantined, error…
	Outcome Outcome   `json:"outcome"`       // done, reject, or retry for a job given up
	Time    time.Time `json:"time"`
	// Deliveries is the attempt that produced the verdict.
	Deliveries int             `json:"deliveries"`
	Request    Request         `json:"request"`
	Verdict    json.RawMessage `json:"verdict,omitempty"` // the handler's verdict
	Error      string          `json:"error,omitempty"`   // the last error of a job given up
}

// newRecord makes the verdict of a handler result, or, with cause, of a job
// given up.
func (c *Conn) newRecord(r Request, res Result, cause error) Record {
	rec := Record{
		EventID:    r.EventID,
		Key:        res.Key,
		Result:     res.Name,
		Outcome:    res.Outcome,
		Time:       time.Now().UTC(),
		Deliveries: r.Attempt,
		Request:    r,
		Verdict:    res.Verdict,
	}
	if cause != nil {
		rec.Outcome, rec.Error = Retry, cause.Error()
	}
	if !isToken(rec.Result) {
		if rec.Result != "" {
			c.log.Warn("queue: bad result name", "event", r.EventID, "name", rec.Result)
		}
		rec.Result = map[Outcome]string{Done: "admitted", Reject: "rejected", Retry: "error"}[rec.Outcome]
	}
	if cause != nil {
		rec.Result = "error"
	}
	return rec
}

// commit records rec in EventVerdictsBucket, which is the job's commit
// point, then announces it. If the event already has a verdict (two
// deliveries ran at once), the first one stays and is announced.
func (c *Conn) commit(rec Record) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := c.eventVerdicts.Create(ctx, EscapeKey(rec.EventID), data); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		first, err := c.eventRecord(ctx, rec.EventID)
		if err != nil {
			return err
		}
		c.log.Warn("queue: event already had a verdict; keeping the first", "event", rec.EventID, "first", first.Result, "second", rec.Result)
		rec = first
	}
	return c.announce(rec)
}

// Announce records a verdict that no worker's handler returned: a change a
// job made to a version besides its own result, such as a re-verification
// quarantining or restoring one version of its shard. It becomes the
// latest verdict of rec.Key (unless a newer one is there), an audit record
// and an event on SubjectEvents+"."+rec.Result, each deduplicated by
// rec.EventID, which must be unique to the change.
func (c *Conn) Announce(rec Record) error {
	if rec.EventID == "" || !isToken(rec.Result) {
		return fmt.Errorf("queue: announce: event id %q, result %q", rec.EventID, rec.Result)
	}
	if rec.Time.IsZero() {
		rec.Time = time.Now().UTC()
	}
	if rec.Outcome == 0 {
		rec.Outcome = Done
	}
	return c.announce(rec)
}

// announce writes everything that follows from a recorded verdict. Each step
// is idempotent (a compare-and-swap, or a message id the server
// deduplicates), so a job that died half-way is announced once when it is
// finished again within the dedup windows.
func (c *Conn) announce(rec Record) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if rec.Key != "" {
		if err := c.putLatest(ctx, rec, data); err != nil {
			return fmt.Errorf("latest verdict of %s: %w", rec.Key, err)
		}
	}
	typ, subject := AuditVerdict, SubjectEvents+"."+rec.Result
	if rec.Outcome == Retry {
		typ, subject = AuditDeadLetter, SubjectDead
	}
	inputs, _ := json.Marshal(rec.Request)
	if err := c.Audit(ctx, AuditRecord{
		ID:      typ + "-" + rec.EventID,
		Time:    rec.Time,
		Type:    typ,
		EventID: rec.EventID,
		Key:     rec.Key,
		Inputs:  inputs,
		Result:  rec.Result,
		Detail:  rec.Verdict,
		Error:   rec.Error,
	}); err != nil {
		return err
	}
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, subject+"-"+rec.EventID)
	m.Header.Set(HeaderEventID, rec.EventID)
	m.Header.Set(HeaderResult, rec.Result)
	if _, err := c.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	return nil
}

// putLatest makes rec the latest verdict of its key unless a newer one is
// there. A job given up ("error") never replaces a real verdict.
func (c *Conn) putLatest(ctx context.Context, rec Record, data []byte) error {
	key := EscapeKey(rec.Key)
	for range 16 {
		e, err := c.verdicts.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err = c.verdicts.Create(ctx, key, data); errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			return err
		}
		if err != nil {
			return err
		}
		var cur Record
		if json.Unmarshal(e.Value(), &cur) == nil {
			if cur.EventID == rec.EventID || cur.Time.After(rec.Time) || (rec.Outcome == Retry && cur.Outcome != Retry) {
				return nil
			}
		}
		_, err = c.verdicts.Update(ctx, key, data, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		return err
	}
	return errors.New("too many concurrent writers")
}

// eventRecord reads the verdict of an event.
func (c *Conn) eventRecord(ctx context.Context, eventID string) (Record, error) {
	e, err := c.eventVerdicts.Get(ctx, EscapeKey(eventID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, err
	}
	return decodeRecord(e.Value())
}

func decodeRecord(b []byte) (Record, error) {
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return Record{}, fmt.Errorf("queue: bad verdict record: %w", err)
	}
	return rec, nil
}

// Verdict returns the latest verdict for key (module@version), or
// ErrNotFound.
func (c *Conn) Verdict(ctx context.Context, key string) (Record, error) {
	e, err := c.verdicts.Get(ctx, EscapeKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, fmt.Errorf("%w for %s", ErrNotFound, key)
	}
	if err != nil {
		return Record{}, err
	}
	return decodeRecord(e.Value())
}

// EventVerdict returns the verdict of an event, or ErrNotFound.
func (c *Conn) EventVerdict(ctx context.Context, eventID string) (Record, error) {
	return c.eventRecord(ctx, eventID)
}

// WaitVerdict waits until the event has a verdict and returns it, or until
// ctx is done. It returns when the verdict is committed; the latest-verdict
// entry, the audit record and the result event follow within moments.
func (c *Conn) WaitVerdict(ctx context.Context, eventID string) (Record, error) {
	// A KV entry is a message on $KV.<bucket>.<key>: subscribe before
	// looking, so that a verdict committed in between is not missed. That is
	// cheaper than a KV watcher, which sets up a consumer.
	ch := make(chan *nats.Msg, 1)
	sub, err := c.nc.ChanSubscribe("$KV."+EventVerdictsBucket+"."+EscapeKey(eventID), ch)
	if err != nil {
		return Record{}, err
	}
	defer sub.Unsubscribe()
	fctx, cancel := context.WithTimeout(ctx, opTimeout)
	err = c.nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		return Record{}, err
	}
	// Subscribers may see the message before the stream has stored it, so
	// after a message look again soon, backing off; and look every second
	// anyway.
	delay := time.Second
	for {
		rec, err := c.eventRecord(ctx, eventID)
		if !errors.Is(err, ErrNotFound) {
			return rec, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return Record{}, ctx.Err()
		case <-ch:
			delay = time.Millisecond
		case <-t.C:
			delay = min(2*delay, time.Second)
		}
		t.Stop()
	}
}
