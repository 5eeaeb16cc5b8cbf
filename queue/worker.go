package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// Outcome says what became of a job.
type Outcome int

const (
	// Done: the job finished (admitted, duplicate…). Its verdict is recorded
	// and announced, and the message acked.
	Done Outcome = iota + 1
	// Reject: a permanent failure. The verdict is recorded and announced,
	// and the message terminated: it is never tried again.
	Reject
	// Retry: a transient failure. The message comes back after the
	// Config.Backoff delay; after MaxDeliver attempts the job is given up.
	Retry
)

var outcomeNames = map[Outcome]string{Done: "done", Reject: "reject", Retry: "retry"}

func (o Outcome) String() string {
	if s, ok := outcomeNames[o]; ok {
		return s
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// MarshalText makes an Outcome readable in records.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (o *Outcome) UnmarshalText(b []byte) error {
	for k, v := range outcomeNames {
		if v == string(b) {
			*o = k
			return nil
		}
	}
	return fmt.Errorf("queue: unknown outcome %q", b)
}

// Result is what a handler made of a request.
type Result struct {
	Outcome Outcome
	// Name is the verdict's result and the last token of its event subject
	// (SubjectEvents+"."+Name): "admitted", "duplicate", "rejected",
	// "quarantined"… Lower-case letters, digits, '-' and '_'. Default:
	// "admitted" for Done, "rejected" for Reject, "error" when given up.
	Name string
	// Key is the module@version the request turned out to be about; "" if
	// it failed before that was known. The latest verdict per key is kept
	// in VerdictsBucket.
	Key string
	// Verdict is the handler's own verdict (JSON), recorded as is.
	Verdict json.RawMessage
}

// Handler runs one job. It is called concurrently, by Config.Workers and
// Config.ReverifyWorkers goroutines in each process.
//
// A nil error means the job has an Outcome, Done or Reject. A non-nil error
// is a transient failure and the job is retried (whatever the Outcome), and
// so is a Result with Outcome Retry. Never return a security failure as an
// error: it would be retried instead of rejected.
//
// ctx is canceled when shutdown's grace period ends; the handler should
// return promptly, and its job is handed back to another worker unless it
// returns Done or Reject. progress may be called at any time to tell the
// server the job is alive (workers also do so every AckWait/3 on their own).
//
// Delivery is at least once: a handler can run again for a job whose
// previous run finished but whose verdict was never recorded (the process
// died in between), so it must be idempotent, as the pipeline is through
// the store's immutability. A job whose verdict was recorded is never run
// again.
type Handler func(ctx context.Context, r Request, progress func()) (Result, error)

// pollWait bounds how long an idle worker waits for a message, and so how
// long it takes to notice that it should stop.
const pollWait = time.Second

// handBackDelay delays a job handed back at shutdown until this process's
// workers have stopped fetching, so that it goes to another process (or the
// next run) instead of bouncing between stopping workers, each bounce
// costing one of its MaxDeliver attempts.
const handBackDelay = pollWait + 500*time.Millisecond

// ErrClosed is returned by RunWorkers when the connection is closed under it.
var ErrClosed = errors.New("queue: connection closed")

// RunWorkers runs Config.Workers workers on the admit consumer and
// Config.ReverifyWorkers on the reverify consumer, each taking one message at
// a time, until ctx is done. Then it stops taking messages (one that arrives
// anyway is handed back), lets running handlers finish for up to
// Config.ShutdownGrace, then cancels their contexts and hands their jobs back
// (NakWithDelay of 1.5s, the time this process's workers take to stop
// fetching) so that another process takes them, and returns nil once every
// handler has returned. A handed-back job counts one delivery.
//
// Each job's verdict is recorded in EventVerdictsBucket (the commit point),
// in VerdictsBucket under its key, appended to the audit stream, and
// published on its result subject, before the message is acked (Done) or
// terminated (Reject). See Handler for retries and the package documentation
// for dead letters.
func (c *Conn) RunWorkers(ctx context.Context, h Handler) error {
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	stop := context.AfterFunc(ctx, func() {
		c.log.Info("queue: stopping workers", "grace", c.cfg.ShutdownGrace)
		t := time.AfterFunc(c.cfg.ShutdownGrace, cancelHard)
		context.AfterFunc(hard, func() { t.Stop() })
	})
	defer stop()

	g, soft := errgroup.WithContext(ctx)
	for _, pool := range []struct {
		cons jetstream.Consumer
		n    int
	}{{c.admit, c.cfg.Workers}, {c.reverify, c.cfg.ReverifyWorkers}} {
		if pool.cons == c.reverify && c.cfg.NoReverify {
			continue
		}
		for range pool.n {
			g.Go(func() error { return c.work(soft, hard, pool.cons, h) })
		}
	}
	return g.Wait()
}

// work is one worker: fetch a message, process it, repeat until ctx ends.
func (c *Conn) work(ctx, hard context.Context, cons jetstream.Consumer, h Handler) error {
	for ctx.Err() == nil {
		// Fetch one at a time: a prefetched message's ack timer would run
		// while it waits, without heartbeats.
		msg, err := cons.Next(jetstream.FetchMaxWait(pollWait))
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
				continue
			}
			if c.nc.IsClosed() {
				return ErrClosed
			}
			c.log.Warn("queue: fetch", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		if ctx.Err() != nil {
			msg.NakWithDelay(handBackDelay) // arrived as shutdown began: hand it back
			return nil
		}
		c.process(hard, msg, h)
	}
	return nil
}

// process takes one message to its end: recorded and acked or terminated,
// put back with a delay, or handed back.
func (c *Conn) process(hard context.Context, msg jetstream.Msg, h Handler) {
	md, err := msg.Metadata()
	if err != nil {
		c.log.Error("queue: message without metadata", "subject", msg.Subject(), "err", err)
		msg.Term()
		return
	}
	var r Request
	if err := json.Unmarshal(msg.Data(), &r); err != nil || r.EventID == "" {
		// Nobody will ever be able to handle it.
		r.Attempt = int(md.NumDelivered)
		if r.EventID == "" {
			r.EventID = fmt.Sprintf("seq-%d", md.Sequence.Stream)
		}
		if err == nil {
			err = errors.New("no event id")
		}
		c.giveUp(msg, r, Result{}, fmt.Errorf("undecodable request: %w", err))
		return
	}
	r.Attempt = int(md.NumDelivered)
	log := c.log.With("event", r.EventID, "kind", r.Kind, "repo", r.Repo, "tag", r.Tag)

	// A recorded verdict means an earlier run finished and its worker died
	// before the ack (or the server lost the ack): finish the job, do not
	// run it again.
	ctx, cancel := context.WithTimeout(hard, opTimeout)
	defer cancel()
	rec, err := c.eventRecord(ctx, r.EventID)
	switch {
	case err == nil:
		log.Info("queue: verdict already recorded; finishing", "result", rec.Result)
		if err := c.announce(rec); err != nil {
			log.Error("queue: announce", "err", err)
			msg.NakWithDelay(c.cfg.backoff(r.Attempt))
			return
		}
		c.finish(msg, rec, log)
		return
	case !errors.Is(err, ErrNotFound):
		log.Warn("queue: reading event verdict", "err", err)
		msg.NakWithDelay(c.cfg.backoff(r.Attempt))
		return
	}
	n, err := c.countAttempt(ctx, r.EventID, r.Attempt)
	if err != nil {
		log.Warn("queue: counting attempts", "err", err)
		msg.NakWithDelay(c.cfg.backoff(r.Attempt))
		return
	}
	r.Attempt = n
	log = log.With("attempt", n)
	if r.Attempt > c.cfg.MaxDeliver {
		c.giveUp(msg, r, Result{}, fmt.Errorf("no outcome after %d deliveries: its workers stopped or missed their heartbeats", c.cfg.MaxDeliver))
		return
	}

	res, err := c.run(hard, msg, r, h)
	if err == nil && res.Outcome != Done && res.Outcome != Reject {
		err = fmt.Errorf("handler returned outcome %v", res.Outcome)
	}
	if err != nil {
		switch {
		case hard.Err() != nil:
			log.Info("queue: shutdown: handing job back", "err", err)
			msg.NakWithDelay(handBackDelay)
		case r.Attempt >= c.cfg.MaxDeliver:
			c.giveUp(msg, r, res, err)
		default:
			d := c.cfg.backoff(r.Attempt)
			log.Warn("queue: transient failure; will retry", "in", d, "err", err)
			msg.NakWithDelay(d)
		}
		return
	}
	rec = c.newRecord(r, res, nil)
	if err := c.commit(rec); err != nil {
		// The handler will run again; it is idempotent.
		log.Error("queue: recording verdict", "result", rec.Result, "err", err)
		msg.NakWithDelay(c.cfg.backoff(r.Attempt))
		return
	}
	log.Info("queue: verdict", "result", rec.Result, "key", rec.Key)
	c.finish(msg, rec, log)
}

// run calls the handler with heartbeats.
func (c *Conn) run(hard context.Context, msg jetstream.Msg, r Request, h Handler) (res Result, err error) {
	ctx, cancel := context.WithCancel(hard)
	defer cancel()
	var last atomic.Int64
	beat := func() {
		last.Store(time.Now().UnixNano())
		if err := msg.InProgress(); err != nil {
			c.log.Debug("queue: heartbeat", "event", r.EventID, "err", err)
		}
	}
	progress := func() {
		if time.Since(time.Unix(0, last.Load())) >= c.cfg.AckWait/10 {
			beat()
		}
	}
	beat()
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(c.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return // handed back: let the server's timer run
			case <-t.C:
				beat()
			}
		}
	}()
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("queue: handler panic", "event", r.EventID, "panic", p, "stack", string(debug.Stack()))
			res, err = Result{}, fmt.Errorf("handler panic: %v", p)
		}
	}()
	return h(ctx, r, progress)
}

// giveUp records an "error" verdict, publishes the dead letter and
// terminates the message.
func (c *Conn) giveUp(msg jetstream.Msg, r Request, res Result, cause error) {
	rec := c.newRecord(r, res, cause)
	log := c.log.With("event", r.EventID, "attempt", r.Attempt)
	if err := c.commit(rec); err != nil {
		// Past MaxDeliver the server will not deliver it again: say so loudly.
		log.Error("queue: dead-lettering", "cause", cause, "err", err)
		msg.NakWithDelay(c.cfg.backoff(r.Attempt))
		return
	}
	log.Error("queue: job given up; dead-lettered", "subject", SubjectDead, "err", cause)
	c.finish(msg, rec, log)
}

// finish acks or terminates a message whose verdict is recorded.
func (c *Conn) finish(msg jetstream.Msg, rec Record, log *slog.Logger) {
	var err error
	if rec.Outcome == Done {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err = msg.DoubleAck(ctx)
		cancel()
	} else {
		err = msg.TermWithReason(rec.Result)
	}
	if err != nil {
		// The next delivery finds the verdict and finishes the job.
		log.Warn("queue: ack", "err", err)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
