package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/modgate/modgate/config"
	"github.com/modgate/modgate/metrics"
	"github.com/modgate/modgate/queue"
	"github.com/modgate/modgate/webhook"
)

// webhookHandler serves /hooks/{github,gitlab,gitea}: deliveries are
// authenticated, checked against the configured repositories, recorded
// against replays in NATS, and enqueued for the workers.
func webhookHandler(cfg *config.Config, qc *queue.Conn, m *metrics.Metrics, log *slog.Logger) http.Handler {
	// Secrets are read at each delivery: a rotated secret file is taken
	// up without a restart, and a broken one refuses deliveries (503)
	// rather than accept them under what it no longer says.
	sources := map[webhook.Provider]config.WebhookSecret{}
	for p, w := range map[webhook.Provider]config.WebhookSecret{
		webhook.GitHub: cfg.Webhooks.GitHub, webhook.GitLab: cfg.Webhooks.GitLab, webhook.Gitea: cfg.Webhooks.Gitea,
	} {
		if !w.Enabled() {
			continue
		}
		sources[p] = w
		if _, err := w.Secrets(); err != nil {
			log.Error("webhook deliveries will be refused until its secret can be read", "provider", p, "err", err)
		}
	}
	wcfg := webhook.Config{
		SecretSource: func(p webhook.Provider) ([][]byte, error) {
			w, ok := sources[p]
			if !ok {
				return nil, nil
			}
			return w.Secrets()
		},
		MaxBody: cfg.Webhooks.MaxBody,
		Allowed: func(urls []string) (string, bool) {
			for _, u := range urls {
				repo, err := config.NormalizeRepo(u)
				if err != nil {
					continue
				}
				if cfg.RepositoryFor(repo) != nil {
					return repo, true
				}
			}
			return "", false
		},
	}
	if err := wcfg.WithDefaults().Validate(); err != nil {
		log.Error("webhooks disabled", "err", err)
		return http.NotFoundHandler()
	}
	sink := webhook.SinkFunc(func(ctx context.Context, ev *webhook.Event, repo string) (string, error) {
		id, _, err := qc.Enqueue(ctx, queue.Request{Kind: queue.KindAdmit, Repo: repo, Tag: ev.Tag,
			Commit: ev.Commit, Source: "webhook:" + string(ev.Provider)})
		return id, err
	})
	audit := webhook.AuditorFunc(func(ctx context.Context, rec webhook.AuditRecord) {
		m.Webhook(string(rec.Provider), rec.Result)
		typ := "webhook"
		if rec.Status == http.StatusUnauthorized {
			typ = queue.AuditSecurity
			m.SecurityEvent("webhook-signature")
		}
		detail, _ := json.Marshal(rec)
		err := qc.Audit(ctx, queue.AuditRecord{Type: typ, EventID: rec.EventID, Result: rec.Result,
			Error: rec.Reason, Detail: detail})
		if err != nil {
			log.Error("audit", "delivery", rec.DeliveryID, "err", err)
		}
	})
	return webhook.NewHandler(wcfg, sink, deliveries{qc}, audit, log)
}

// deliveries is the replay record of webhook deliveries, in NATS KV.
type deliveries struct{ qc *queue.Conn }

func (d deliveries) Seen(ctx context.Context, p webhook.Provider, key string) (bool, error) {
	return d.qc.SeenDelivery(ctx, string(p), key)
}

func (d deliveries) Has(ctx context.Context, p webhook.Provider, key string) (bool, error) {
	return d.qc.HasDelivery(ctx, string(p), key)
}

func (d deliveries) Forget(ctx context.Context, p webhook.Provider, key string) error {
	return d.qc.ForgetDelivery(ctx, string(p), key)
}
