package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Conn is a connection to NATS JetStream (and, when embedding, the server
// itself) with the streams, consumers and buckets modgate uses. A Conn is
// safe for concurrent use.
type Conn struct {
	cfg Config
	log *slog.Logger

	ns *server.Server // nil with an external cluster
	nc *nats.Conn
	js jetstream.JetStream

	events, audit                              jetstream.Stream
	admit, reverify                            jetstream.Consumer
	verdicts, eventVerdicts, locks, deliveries jetstream.KeyValue
	attempts                                   jetstream.KeyValue

	closed    chan struct{} // closed when nc is closed
	closeOnce sync.Once
	closeErr  error
}

// opTimeout bounds each NATS operation a worker makes on its own behalf,
// such as recording a verdict, even after shutdown has begun.
const opTimeout = 10 * time.Second

// Start embeds a nats-server (cfg.URL empty) or connects to an external
// cluster, then creates or updates the streams, consumers and buckets
// described in the package documentation, so every process that starts
// brings them to this version's settings. ctx bounds the start only.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Conn, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Conn{cfg: cfg, log: log, closed: make(chan struct{})}
	var once sync.Once
	opts := []nats.Option{
		nats.Name("modgate"),
		nats.ClosedHandler(func(*nats.Conn) { once.Do(func() { close(c.closed) }) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats: disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats: reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}
	url := cfg.URL
	if url == "" {
		ns, err := embed(ctx, cfg, log)
		if err != nil {
			return nil, err
		}
		c.ns = ns
		// Our own connection is in-process even when the server listens.
		opts = append(opts, nats.InProcessServer(ns))
		if !cfg.NoListen {
			url = ns.ClientURL()
		}
	} else {
		opts = append(opts, nats.MaxReconnects(-1))
		if cfg.Creds != "" {
			opts = append(opts, nats.UserCredentials(cfg.Creds))
		}
		if cfg.TLSCA != "" {
			opts = append(opts, nats.RootCAs(cfg.TLSCA))
		}
		if cfg.TLSCert != "" {
			opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		c.shutdownServer()
		return nil, fmt.Errorf("queue: connect: %w", err)
	}
	c.nc = nc
	if c.js, err = jetstream.New(nc); err == nil {
		err = c.setup(ctx)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("queue: setup: %w", err)
	}
	return c, nil
}

// embed starts a nats-server with JetStream in this process.
func embed(ctx context.Context, cfg Config, log *slog.Logger) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "modgate",
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true, // signals are the program's business, not the library's
		DontListen: cfg.NoListen,
	}
	if !cfg.NoListen {
		host, port, _ := net.SplitHostPort(cfg.Listen) // checked by Validate
		opts.Host = host
		opts.Port, _ = strconv.Atoi(port)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("queue: embedded nats-server: %w", err)
	}
	sl := &serverLog{log: log.With("component", "nats-server"), fatal: make(chan string, 1)}
	ns.SetLoggerV2(sl, false, false, false)
	ns.Start() // enables JetStream (recovering the store) before it returns
	fail := func(err error) (*server.Server, error) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("queue: embedded nats-server: %w", err)
	}
	for !ns.ReadyForConnections(100 * time.Millisecond) {
		select {
		case msg := <-sl.fatal:
			return fail(errors.New(msg))
		case <-ctx.Done():
			return fail(ctx.Err())
		default:
		}
	}
	select {
	case msg := <-sl.fatal:
		return fail(errors.New(msg))
	default:
	}
	if !ns.JetStreamEnabled() {
		return fail(errors.New("JetStream is not enabled"))
	}
	return ns, nil
}

// setup creates or updates everything modgate uses. The settings are
// documented in doc.go; keep the two in step.
func (c *Conn) setup(ctx context.Context) error {
	cfg := c.cfg
	var err error
	c.events, err = c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        EventsStream,
		Description: "modgate requests, result events and dead letters",
		Subjects:    []string{SubjectAdmit, SubjectReverify, SubjectEvents + ".>", SubjectDead},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.EventMaxAge,
		Duplicates:  cfg.DedupWindow,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", EventsStream, err)
	}
	c.audit, err = c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        AuditStream,
		Description: "modgate audit trail: verdicts, security events, dead letters (append-only)",
		Subjects:    []string{SubjectAudit + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  auditDedupWindow,
		DenyDelete:  true,
		DenyPurge:   true,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", AuditStream, err)
	}
	for _, cc := range []struct {
		cons    *jetstream.Consumer
		name    string
		subject string
	}{{&c.admit, AdmitConsumer, SubjectAdmit}, {&c.reverify, ReverifyConsumer, SubjectReverify}} {
		*cc.cons, err = c.js.CreateOrUpdateConsumer(ctx, EventsStream, jetstream.ConsumerConfig{
			Durable:       cc.name,
			Description:   "modgate workers for " + cc.subject,
			FilterSubject: cc.subject,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			// One delivery more than MaxDeliver: a job whose worker died on
			// every attempt comes back once more, to be dead-lettered
			// instead of silently dropped by the server. No BackOff: it would
			// replace AckWait; delays come from NakWithDelay.
			MaxDeliver:    cfg.MaxDeliver + 1,
			MaxAckPending: 1000,
		})
		if err != nil {
			return fmt.Errorf("consumer %s: %w", cc.name, err)
		}
	}
	for _, b := range []struct {
		kv  *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		{&c.verdicts, jetstream.KeyValueConfig{Bucket: VerdictsBucket, Description: "latest verdict per module@version", History: 16}},
		{&c.eventVerdicts, jetstream.KeyValueConfig{Bucket: EventVerdictsBucket, Description: "the verdict of each event", History: 1, TTL: cfg.EventMaxAge}},
		{&c.attempts, jetstream.KeyValueConfig{Bucket: AttemptsBucket, Description: "deliveries of each event", History: 1, TTL: cfg.EventMaxAge}},
		{&c.locks, jetstream.KeyValueConfig{Bucket: LocksBucket, Description: "publish locks per module@version", History: 1, LimitMarkerTTL: time.Minute}},
		{&c.deliveries, jetstream.KeyValueConfig{Bucket: DeliveriesBucket, Description: "webhook delivery ids, for replay refusal", History: 1, TTL: cfg.DeliveryTTL}},
	} {
		b.cfg.Storage = jetstream.FileStorage
		b.cfg.Replicas = cfg.Replicas
		if *b.kv, err = c.js.CreateOrUpdateKeyValue(ctx, b.cfg); err != nil {
			return fmt.Errorf("bucket %s: %w", b.cfg.Bucket, err)
		}
	}
	return nil
}

// Close drains the connection and, when embedded, shuts the server down and
// waits for it. Call it after RunWorkers has returned.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		if c.nc != nil {
			if err := c.nc.Drain(); err != nil {
				c.nc.Close()
			}
			select {
			case <-c.closed:
			case <-time.After(time.Minute): // nats.DefaultDrainTimeout is 30s
				c.nc.Close()
			}
			if err := c.nc.LastError(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				c.closeErr = err
			}
		}
		c.shutdownServer()
	})
	return c.closeErr
}

func (c *Conn) shutdownServer() {
	if c.ns != nil {
		c.ns.Shutdown()
		c.ns.WaitForShutdown()
	}
}

// URL is where other processes reach this NATS: the external URL, or the
// embedded server's client URL ("" when it does not listen).
func (c *Conn) URL() string {
	if c.ns == nil {
		return c.cfg.URL
	}
	if c.cfg.NoListen {
		return ""
	}
	return c.ns.ClientURL()
}

// NATS returns the underlying connection, for other NATS-backed components
// (the object store) to share.
func (c *Conn) NATS() *nats.Conn { return c.nc }

// JetStream returns the JetStream handle on the connection.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// Config returns the configuration in effect, defaults filled in.
func (c *Conn) Config() Config { return c.cfg }
