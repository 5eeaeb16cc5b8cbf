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

// Audit record types; each is the last token of the record's subject
// (SubjectAudit+"."+type).
const (
	AuditVerdict    = "verdict"     // every verdict of every event (written by the workers)
	AuditDeadLetter = "dead-letter" // every job given up (written by the workers)
	AuditSecurity   = "security"    // moved tag, checksum mismatch, bad webhook signature…
)

// auditDedupWindow: an audit record with an ID is appended once within it,
// so finishing a job again after a crash does not repeat its record.
const auditDedupWindow = time.Hour

// AuditRecord is one entry of the append-only audit trail.
type AuditRecord struct {
	// ID, if set, deduplicates the record for an hour (Nats-Msg-Id).
	ID      string          `json:"id,omitempty"`
	Time    time.Time       `json:"time"` // set by Audit when zero
	Type    string          `json:"type"` // AuditVerdict, AuditSecurity…
	EventID string          `json:"event_id,omitempty"`
	Key     string          `json:"key,omitempty"`    // module@version, when known
	Inputs  json.RawMessage `json:"inputs,omitempty"` // what the decision was made from
	Result  string          `json:"result,omitempty"`
	Detail  json.RawMessage `json:"detail,omitempty"` // the verdict, or the event's evidence
	Error   string          `json:"error,omitempty"`

	// Seq is the record's sequence in AuditStream, set by ReadAudit.
	Seq uint64 `json:"-"`
}

// Audit appends rec to the audit stream. When it returns nil the record is
// stored. Safe for concurrent use.
func (c *Conn) Audit(ctx context.Context, rec AuditRecord) error {
	if !isToken(rec.Type) {
		return fmt.Errorf("queue: audit record type %q: want lower-case letters, digits, '-' or '_'", rec.Type)
	}
	if rec.Time.IsZero() {
		rec.Time = time.Now().UTC()
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	m := nats.NewMsg(SubjectAudit + "." + rec.Type)
	m.Data = data
	if rec.ID != "" {
		m.Header.Set(jetstream.MsgIDHeader, rec.ID)
	}
	if rec.EventID != "" {
		m.Header.Set(HeaderEventID, rec.EventID)
	}
	if _, err := c.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("queue: audit %s: %w", rec.Type, err)
	}
	return nil
}

// ReadAudit calls fn for each audit record stored at or after since (all of
// them for a zero since), oldest first, up to the last record stored when it
// was called. An error from fn stops the reading and is returned.
func (c *Conn) ReadAudit(ctx context.Context, since time.Time, fn func(AuditRecord) error) error {
	info, err := c.audit.Info(ctx)
	if err != nil {
		return err
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 || (!since.IsZero() && info.State.LastTime.Before(since)) {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{SubjectAudit + ".>"}}
	if !since.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := c.js.OrderedConsumer(ctx, AuditStream, cfg)
	if err != nil {
		return err
	}
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return ctx.Err()
			}
			return err
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		var rec AuditRecord
		if err := json.Unmarshal(m.Data(), &rec); err != nil {
			return fmt.Errorf("queue: audit record %d: %w", md.Sequence.Stream, err)
		}
		rec.Seq = md.Sequence.Stream
		if err := fn(rec); err != nil {
			return err
		}
		if md.Sequence.Stream >= last || md.NumPending == 0 {
			return nil
		}
	}
}
