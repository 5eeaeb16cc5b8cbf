package webhook

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

type nopSink struct{}

func (nopSink) Enqueue(context.Context, *Event, string) (string, error) { return "ev", nil }

// nopReplays never remembers, so every iteration takes the accepting path.
type nopReplays struct{}

func (nopReplays) Seen(context.Context, Provider, string) (bool, error) { return false, nil }
func (nopReplays) Has(context.Context, Provider, string) (bool, error)  { return false, nil }
func (nopReplays) Forget(context.Context, Provider, string) error       { return nil }

type nopAuditor struct{}

func (nopAuditor) Audit(context.Context, AuditRecord) {}

// BenchmarkHandler measures one accepted tag push end to end: body read,
// signature check, replay bookkeeping, parse, allow-list, enqueue, audit,
// a JSON log line and the response.
func BenchmarkHandler(b *testing.B) {
	for _, c := range []struct {
		p    Provider
		name string
	}{{GitHub, "push_tag"}, {GitLab, "tag_push"}, {Gitea, "push_tag"}} {
		f := findFixture(b, c.p, c.name)
		b.Run(string(c.p), func(b *testing.B) {
			log := slog.New(slog.NewJSONHandler(io.Discard, nil))
			h := NewHandler(Config{Secrets: testSecrets, Allowed: allowFixtures}, nopSink{}, nopReplays{}, nopAuditor{}, log)
			path := "/hooks/" + string(c.p)
			b.SetBytes(int64(len(f.body)))
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(f.body))
				req.Header = f.header
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusAccepted {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	f := findFixture(b, GitHub, "push_tag")
	b.SetBytes(int64(len(f.body)))
	for b.Loop() {
		if err := Verify(GitHub, f.header, f.body, testSecrets[GitHub]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	f := findFixture(b, GitHub, "push_tag")
	b.SetBytes(int64(len(f.body)))
	for b.Loop() {
		if _, err := Parse(GitHub, f.header, f.body); err != nil {
			b.Fatal(err)
		}
	}
}
