package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/pipeline"
)

func TestExposition(t *testing.T) {
	m := New(func(context.Context) (int, error) { return 7, nil })
	m.Verdict(&pipeline.Verdict{Result: pipeline.Rejected,
		Stages:   []pipeline.StageResult{{Name: "fetch", Status: "ok", DurationMS: 12}, {Name: "immutability", Status: "rejected", DurationMS: 1}, {Name: "publish", Status: "skipped"}},
		Problems: []pipeline.Problem{{Check: "immutability", Security: true}}})
	m.Webhook("github", "refused")
	m.SecurityEvent("webhook-signature")
	m.Redelivered()
	m.Reverified(map[string]int{"good": 3, "quarantined": 1})
	m.Reverified(map[string]int{"good": 2})
	m.RunCompleted(time.Unix(1700000000, 0))
	m.WatchKeys(func() []pipeline.KeyExpiry {
		return []pipeline.KeyExpiry{{Group: "release-team", Fingerprint: "ABCD", Expires: time.Unix(1800000000, 0)}}
	})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`modgate_admissions_total{result="rejected"} 1`,
		`modgate_stage_duration_seconds_count{stage="fetch",status="ok"} 1`,
		`modgate_security_events_total{check="immutability"} 1`,
		`modgate_security_events_total{check="webhook-signature"} 1`,
		`modgate_webhook_deliveries_total{provider="github",result="refused"} 1`,
		`modgate_redeliveries_total 1`,
		`modgate_queue_depth 7`,
		`modgate_reverify_versions_total{outcome="good"} 5`,
		`modgate_reverify_versions_total{outcome="quarantined"} 1`,
		`modgate_reverify_last_run_completed_timestamp_seconds 1.7e+09`,
		`modgate_signing_key_expiry_timestamp_seconds{fingerprint="ABCD",group="release-team"} 1.8e+09`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(string(body), `stage="publish"`) {
		t.Error("skipped stages must not be observed")
	}
}
