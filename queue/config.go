package queue

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"time"
)

// Config configures the connection to NATS, the streams and buckets modgate
// creates, and the workers. The zero value plus StoreDir is a working
// single-machine configuration; see WithDefaults.
type Config struct {
	// URL of an external NATS cluster ("nats://…" or "tls://…"). Empty:
	// embed a nats-server with JetStream in this process.
	URL string
	// Creds is a NATS credentials file for the external cluster (optional).
	Creds string
	// TLSCA, TLSCert and TLSKey configure TLS to the external cluster
	// (optional; TLSCert and TLSKey go together).
	TLSCA, TLSCert, TLSKey string

	// StoreDir is the embedded server's JetStream directory (required when
	// URL is empty; conventionally <data_dir>/nats).
	StoreDir string
	// Listen is the embedded server's client address, host:port; port -1
	// picks a free port. Default "127.0.0.1:4222": loopback only, so that
	// `modgate admit --enqueue` and `modgate serve --workers-only` on this
	// machine can connect. The embedded server has no authentication, so a
	// non-loopback host is refused unless InsecureListenNonLoopback is set.
	Listen string
	// NoListen runs the embedded server without any network listener: only
	// this process can reach it (tests, a one-process deployment).
	NoListen bool
	// InsecureListenNonLoopback allows Listen on a non-loopback address:
	// anyone who can reach it can enqueue, read and forge verdicts.
	InsecureListenNonLoopback bool

	// Replicas of every stream and bucket (1 when embedded; up to 5 on a
	// cluster). Default 1.
	Replicas int

	// Workers is the number of concurrent admissions per process. Default
	// runtime.NumCPU().
	Workers int
	// ReverifyWorkers is the number of concurrent re-verifications per
	// process, on their own consumer so that a nightly re-verification of
	// everything never delays a tag push. Default max(1, Workers/2).
	ReverifyWorkers int
	// NoReverify runs no re-verification workers in this process (one
	// that cannot prove records of the checksum log: `serve --workers-only`).
	NoReverify bool
	// AckWait is how long the server waits for a worker's ack before it
	// redelivers; workers send an InProgress heartbeat every AckWait/3 while
	// a handler runs, so a long job is not redelivered and a dead worker's
	// job is. Default 30s; at least 1s.
	AckWait time.Duration
	// MaxDeliver is how many times a job is tried before it is given up:
	// recorded as an "error" verdict and published on the dead-letter
	// subject with its last error. Default 5.
	MaxDeliver int
	// Backoff is the NakWithDelay schedule after a transient failure:
	// Backoff[n-1] after the n-th failed attempt, the last entry repeating.
	// Default 2s, 10s, 1m, 5m.
	Backoff []time.Duration
	// DedupWindow: requests with the same message id (see MsgID) within it
	// are one event, so a redelivered webhook is one admission. Default 10m.
	DedupWindow time.Duration
	// EventMaxAge is how long requests, result events and dead letters stay
	// in the MODGATE_EVENTS stream, and how long per-event verdicts are
	// kept. A request that no worker took within it is lost, so it must be
	// longer than any outage. Default 720h (30 days); at least DedupWindow.
	EventMaxAge time.Duration
	// DeliveryTTL is how long a webhook delivery id is remembered, so that a
	// replayed delivery is refused. Default 72h.
	DeliveryTTL time.Duration
	// ShutdownGrace is how long running handlers may go on after RunWorkers'
	// context ends; then their contexts are canceled and their jobs handed
	// back. Default 30s.
	ShutdownGrace time.Duration
}

// WithDefaults returns c with every unset field set to its default.
func (c Config) WithDefaults() Config {
	if c.URL == "" && c.Listen == "" && !c.NoListen {
		c.Listen = "127.0.0.1:4222"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Workers == 0 {
		c.Workers = max(1, runtime.NumCPU())
	}
	if c.ReverifyWorkers == 0 {
		c.ReverifyWorkers = max(1, c.Workers/2)
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 5
	}
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{2 * time.Second, 10 * time.Second, time.Minute, 5 * time.Minute}
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = 10 * time.Minute
	}
	if c.EventMaxAge == 0 {
		c.EventMaxAge = 30 * 24 * time.Hour
	}
	if c.DeliveryTTL == 0 {
		c.DeliveryTTL = 72 * time.Hour
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	return c
}

// Validate checks a configuration after WithDefaults.
func (c Config) Validate() error {
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			return fmt.Errorf("queue: url %q: want nats://host:port or tls://host:port", c.URL)
		}
		if (c.TLSCert == "") != (c.TLSKey == "") {
			return errors.New("queue: tls cert and tls key go together")
		}
	} else {
		if c.StoreDir == "" {
			return errors.New("queue: store dir is required for the embedded server")
		}
		if c.Creds != "" || c.TLSCA != "" || c.TLSCert != "" {
			return errors.New("queue: creds and tls options need an external url")
		}
		if !c.NoListen {
			if err := checkListen(c.Listen, c.InsecureListenNonLoopback); err != nil {
				return err
			}
		}
		if c.Replicas != 1 {
			return errors.New("queue: the embedded server has one replica")
		}
	}
	switch {
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("queue: replicas %d: want 1 to 5", c.Replicas)
	case c.Workers < 1 || c.Workers > 1024:
		return fmt.Errorf("queue: workers %d: want 1 to 1024", c.Workers)
	case c.ReverifyWorkers < 1 || c.ReverifyWorkers > 1024:
		return fmt.Errorf("queue: reverify workers %d: want 1 to 1024", c.ReverifyWorkers)
	case c.AckWait < time.Second:
		return fmt.Errorf("queue: ack wait %v: want at least 1s", c.AckWait)
	case c.MaxDeliver < 1:
		return fmt.Errorf("queue: max deliver %d: want at least 1", c.MaxDeliver)
	case c.DedupWindow <= 0:
		return fmt.Errorf("queue: dedup window %v: want > 0", c.DedupWindow)
	case c.EventMaxAge < c.DedupWindow:
		// A duplicate is recognized only while its original is stored.
		return fmt.Errorf("queue: event max age %v is shorter than the dedup window %v", c.EventMaxAge, c.DedupWindow)
	case c.DeliveryTTL < time.Second:
		return fmt.Errorf("queue: delivery ttl %v: want at least 1s", c.DeliveryTTL)
	case c.ShutdownGrace < 0:
		return fmt.Errorf("queue: shutdown grace %v: want >= 0", c.ShutdownGrace)
	}
	for _, d := range c.Backoff {
		if d <= 0 {
			return fmt.Errorf("queue: backoff %v: want > 0", c.Backoff)
		}
	}
	return nil
}

func checkListen(addr string, insecure bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("queue: listen %q: %v", addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < -1 || p > 65535 {
		return fmt.Errorf("queue: listen %q: bad port", addr)
	}
	if insecure {
		return nil
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("queue: listen %q is not a loopback address; the embedded server has no authentication (InsecureListenNonLoopback)", addr)
	}
	return nil
}

// backoff is the delay before the next attempt after attempt n failed.
func (c Config) backoff(n int) time.Duration {
	return c.Backoff[min(max(n, 1), len(c.Backoff))-1]
}
