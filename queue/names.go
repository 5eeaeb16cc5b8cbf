package queue

import (
	"fmt"
	"strconv"
	"strings"
)

// Names of everything modgate creates in NATS. They are part of modgate's
// interface: downstream consumers subscribe to the result subjects, operators
// read the audit stream. The settings are in the package documentation.
const (
	// EventsStream holds requests, result events and dead letters.
	EventsStream = "MODGATE_EVENTS"
	// SubjectAdmit carries admission requests (tag pushes, `modgate admit --enqueue`).
	SubjectAdmit = "modgate.admit.request"
	// SubjectReverify carries re-verification requests (`modgate reverify`,
	// the nightly schedule), consumed separately at lower concurrency.
	SubjectReverify = "modgate.reverify.request"
	// SubjectEvents prefixes the result events: SubjectEvents+"."+result.
	SubjectEvents = "modgate.events"
	// Result subjects for downstream consumers. Each message is a Record.
	SubjectAdmitted    = SubjectEvents + ".admitted"
	SubjectRejected    = SubjectEvents + ".rejected"
	SubjectDuplicate   = SubjectEvents + ".duplicate"
	SubjectQuarantined = SubjectEvents + ".quarantined"
	// SubjectDead receives a DeadLetter for each job given up after MaxDeliver.
	SubjectDead = "modgate.dead"

	// AdmitConsumer and ReverifyConsumer are the durable pull consumers of the
	// workers, on SubjectAdmit and SubjectReverify.
	AdmitConsumer    = "workers"
	ReverifyConsumer = "reverify"

	// AuditStream is the append-only audit trail, subjects SubjectAudit+"."+type.
	AuditStream  = "MODGATE_AUDIT"
	SubjectAudit = "modgate.audit"

	// VerdictsBucket holds the latest verdict per module@version (a Record;
	// key: EscapeKey(module@version)).
	VerdictsBucket = "modgate_verdicts"
	// EventVerdictsBucket holds the one verdict of each event (a Record; key:
	// EscapeKey(event id)), kept EventMaxAge. Creating it is the commit point
	// of a job: a job whose event has a verdict is never run again.
	EventVerdictsBucket = "modgate_event_verdicts"
	// AttemptsBucket counts the deliveries of each event (key: EscapeKey(event
	// id)), kept EventMaxAge. The server's own count is not enough: the
	// embedded server loses it when its process is killed, so a job that
	// kills its process would otherwise be retried forever.
	AttemptsBucket = "modgate_attempts"
	// LocksBucket holds publish locks per module@version, each with a TTL.
	LocksBucket = "modgate_locks"
	// DeliveriesBucket remembers webhook delivery ids for DeliveryTTL.
	DeliveriesBucket = "modgate_deliveries"
)

// Header names set on messages modgate publishes.
const (
	HeaderEventID = "Modgate-Event-Id"
	HeaderResult  = "Modgate-Result"
)

// EscapeKey makes s a valid KV key: letters, digits, '-', '_' and '/' are
// kept, every other byte becomes "=XX" (hex). KV keys may not contain '@',
// and '.' separates tokens, so "example.com/m@v1.0.0" becomes
// "example=2Ecom/m=40v1=2E0=2E0": one token, reversible with UnescapeKey.
func EscapeKey(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '/' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

// UnescapeKey reverses EscapeKey.
func UnescapeKey(k string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		if k[i] != '=' {
			b.WriteByte(k[i])
			continue
		}
		if i+2 >= len(k) || !isHex(k[i+1]) || !isHex(k[i+2]) {
			return "", fmt.Errorf("queue: bad escaped key %q", k)
		}
		c, _ := strconv.ParseUint(k[i+1:i+3], 16, 8)
		b.WriteByte(byte(c))
		i += 2
	}
	return b.String(), nil
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

// isToken reports whether s may be one subject token of ours.
func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
