package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrLocked is returned by Lock when another holder has the lock.
var ErrLocked = errors.New("queue: locked")

// Lock takes the lock named key (a module@version) for at most ttl (at
// least a second): a create-if-absent in LocksBucket whose entry the server
// removes after ttl, so the lock of a worker that died frees itself. It
// returns ErrLocked when someone else holds it. unlock releases the lock if
// it is still the one taken; it is safe to call more than once. The holder
// must finish within ttl: an expired lock can be taken by another.
//
// Together with the store's immutability this keeps two events for the same
// module@version from publishing twice.
func (c *Conn) Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(), err error) {
	if ttl < time.Second {
		return nil, fmt.Errorf("queue: lock ttl %v: want at least 1s", ttl)
	}
	host, _ := os.Hostname()
	owner := fmt.Sprintf("%s pid %d at %s", host, os.Getpid(), time.Now().UTC().Format(time.RFC3339Nano))
	k := EscapeKey(key)
	rev, err := c.locks.Create(ctx, k, []byte(owner), jetstream.KeyTTL(ttl))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, key)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: lock %s: %w", key, err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		// Only our revision: if it expired and someone else took the
		// lock, theirs stays.
		if err := c.locks.Delete(ctx, k, jetstream.LastRevision(rev)); err != nil {
			c.log.Debug("queue: unlock", "key", key, "err", err)
		}
	}, nil
}

// SeenDelivery records a webhook delivery id and reports whether it had been
// recorded before (within DeliveryTTL): an atomic create-if-absent, so of
// two concurrent calls with one id exactly one gets false.
func (c *Conn) SeenDelivery(ctx context.Context, provider, deliveryID string) (bool, error) {
	if provider == "" || deliveryID == "" {
		return false, errors.New("queue: delivery needs provider and id")
	}
	_, err := c.deliveries.Create(ctx, EscapeKey(provider)+"."+EscapeKey(deliveryID), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("queue: delivery %s %s: %w", provider, deliveryID, err)
	}
	return false, nil
}

// Depth is the work in the queue.
type Depth struct {
	Pending  int // waiting for a worker
	InFlight int // delivered and not yet acked (running, or waiting to be retried)
}

// QueueDepth reports the work waiting in both consumers, for metrics.
func (c *Conn) QueueDepth(ctx context.Context) (Depth, error) {
	var d Depth
	for _, cons := range []jetstream.Consumer{c.admit, c.reverify} {
		info, err := cons.Info(ctx)
		if err != nil {
			return Depth{}, err
		}
		d.Pending += int(info.NumPending)
		d.InFlight += info.NumAckPending
	}
	return d, nil
}

// countAttempt records one more delivery of an event and returns its attempt
// number: one more than the last recorded, and at least the server's count.
func (c *Conn) countAttempt(ctx context.Context, eventID string, delivered int) (int, error) {
	key := EscapeKey(eventID)
	for range 16 {
		e, err := c.attempts.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			n := max(delivered, 1)
			if _, err = c.attempts.Create(ctx, key, []byte(strconv.Itoa(n))); errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			return n, err
		}
		if err != nil {
			return 0, err
		}
		prev, _ := strconv.Atoi(string(e.Value()))
		n := max(prev+1, delivered)
		_, err = c.attempts.Update(ctx, key, []byte(strconv.Itoa(n)), e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		return n, err
	}
	return 0, errors.New("queue: too many concurrent deliveries")
}
