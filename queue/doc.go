// Package queue is modgate's NATS JetStream side: it carries admission and
// re-verification requests from webhooks, the CLI and the schedule to
// workers, runs the workers, and records every verdict and security event.
//
// # NATS
//
// Start embeds a nats-server with JetStream (data in Config.StoreDir,
// listening on loopback only, or on nothing with Config.NoListen), or, with
// Config.URL, connects to an external cluster (nats-server 2.11 or later:
// the locks need per-message TTLs) and embeds nothing. Either way it creates
// or updates, with these names and settings:
//
//	name                     kind      settings
//	MODGATE_EVENTS           stream    subjects modgate.admit.request, modgate.reverify.request,
//	                                   modgate.events.>, modgate.dead; limits retention, file
//	                                   storage, MaxAge EventMaxAge (720h), Duplicates DedupWindow
//	                                   (10m), discard old
//	workers                  consumer  durable pull on MODGATE_EVENTS, filter modgate.admit.request,
//	                                   deliver all, ack explicit, AckWait (30s), MaxDeliver
//	                                   MaxDeliver+1 (6), MaxAckPending 1000, no BackOff
//	reverify                 consumer  the same on modgate.reverify.request
//	MODGATE_AUDIT            stream    subjects modgate.audit.>; limits retention, file storage,
//	                                   no limits (kept forever), Duplicates 1h, DenyDelete,
//	                                   DenyPurge: append-only, never deleted by modgate
//	modgate_verdicts         KV        latest verdict per module@version (Record); History 16
//	modgate_event_verdicts   KV        the verdict of each event (Record); History 1, TTL EventMaxAge
//	modgate_attempts         KV        deliveries of each event (a count); History 1, TTL EventMaxAge
//	modgate_locks            KV        publish locks per module@version; History 1, per-key TTL
//	                                   (LimitMarkerTTL 1m)
//	modgate_deliveries       KV        webhook delivery ids; History 1, TTL DeliveryTTL (72h)
//
// All are file-backed with Config.Replicas replicas (1). KV keys are
// EscapeKey of the module@version or event id, since '@' is not allowed in
// a key.
//
// # Events
//
// Enqueue publishes a Request (JSON) on modgate.admit.request or
// modgate.reverify.request with the message id MsgID: a hash of kind, repo,
// tag, commit, module, version and an optional nonce. Within DedupWindow the
// server stores one message per id, so a redelivered webhook, or a second
// `modgate admit --enqueue` of the same tag, is one event, and Enqueue
// returns the first one's event id; a tag moved to another commit is a new
// event, and so is a request with a fresh Nonce. The stream keeps messages after they are acked (limits
// retention, not work-queue) so that duplicates are still recognized after a
// server restart (the server rebuilds its dedup table from stored messages)
// and the first request can be read back; EventMaxAge bounds it, and must be
// longer than any outage of the workers.
//
// # Workers
//
// RunWorkers runs Config.Workers workers on the workers consumer and
// Config.ReverifyWorkers on the reverify consumer, so that a nightly
// re-verification of every version never delays a tag push. Each worker
// fetches one message at a time and:
//
//  1. finishes without running the handler if the event already has a
//     verdict in modgate_event_verdicts (its worker died before the ack);
//  2. counts the attempt in modgate_attempts, and dead-letters the job if it
//     is past MaxDeliver attempts (a job whose workers died every time). The
//     server's NumDelivered is not enough: a SIGKILLed embedded server
//     restarts with the delivery counts of its last consumer-state flush, so
//     a job that kills its process would otherwise run forever. The consumer
//     also allows one delivery more than MaxDeliver, so that the last one is
//     seen and dead-lettered instead of silently dropped by the server;
//  3. runs the Handler, sending InProgress every AckWait/3 (and when the
//     handler calls progress), so a long stage is not redelivered and a
//     dead worker's job is, AckWait after its last heartbeat;
//  4. on Done or Reject, creates the event's verdict in
//     modgate_event_verdicts (the commit point: create-if-absent, so an event
//     has exactly one verdict), makes it the latest in modgate_verdicts
//     unless a newer one is there, appends it to the audit stream
//     (modgate.audit.verdict), publishes it on modgate.events.<result>, and
//     then acks (Done) or terminates (Reject) the message;
//  5. on a transient failure (an error, or Retry) NakWithDelay with
//     Config.Backoff[attempt-1] (2s, 10s, 1m, 5m; the last repeats), or, on
//     attempt MaxDeliver, records an "error" verdict, appends
//     modgate.audit.dead-letter, publishes the Record with its last error on
//     modgate.dead and terminates the message.
//
// The consumer's own BackOff is not used: when set, the server replaces
// AckWait with BackOff[0] (and requires MaxDeliver >= len(BackOff)), which
// would make heartbeats depend on the retry schedule.
//
// Delivery is at least once, verdicts exactly once: a handler may run again
// after a crash between its end and the commit (the pipeline is idempotent
// through the store's immutability and the module@version Lock), but never
// once the event's verdict is recorded. Steps after the commit are
// idempotent and repeated after a crash: the latest-verdict update is a
// compare-and-swap, and the audit record and result event carry message ids
// (deduplicated for 1h and DedupWindow), so downstream sees each once unless
// a crashed job is finished after those windows; result events carry
// Modgate-Event-Id for consumers that must be exact.
//
// When RunWorkers' context ends, workers stop fetching (a message that
// arrives anyway is handed back), running handlers get ShutdownGrace to
// finish and be recorded, then their contexts are canceled and their jobs
// handed back with a short delay so that another process takes them.
//
// A job that kills its process takes the jobs running beside it down too;
// each such crash costs them an attempt, so a job that happens to be in
// flight at each of a poison job's MaxDeliver crashes is given up with it
// (its dead letter says "no outcome after N deliveries"; enqueue it again, with a Nonce inside the
// dedup window).
//
// # Downstream
//
// Result events are Records on modgate.events.admitted, .duplicate,
// .rejected, .quarantined (or whatever result name the handler gives), dead
// letters are Records on modgate.dead; both are stored in MODGATE_EVENTS for
// EventMaxAge, so a consumer can be durable. The audit trail
// (modgate.audit.verdict, .dead-letter, .security, …) is AuditRecords with
// time, event id, inputs and result; ReadAudit reads it.
package queue
