package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestSecretsNeverLogged runs every fixture every way and checks that no
// secret, signature or body appears in a log line, an audit record or a
// response, and that every log line names the delivery.
func TestSecretsNeverLogged(t *testing.T) {
	var logs, audits, bodies bytes.Buffer
	for _, f := range loadFixtures(t) {
		runs := map[string]func() (http.Header, []byte){"genuine": func() (http.Header, []byte) { return f.header, f.body }}
		for how, forge := range forgeries(f) {
			runs[how] = forge
		}
		for _, run := range runs {
			r := newRig(t)
			h, body := run()
			r.send(f, h, body)
			r.send(f, h, body) // and its replay
			r.sink.setFail(errors.New("queue down"))
			h2 := h.Clone()
			for _, k := range deliveryHeaders[f.provider] {
				if h2.Get(k) != "" {
					h2.Set(k, "5b7e1d9c-3a2f-4e8b-8c6d-0f1a2b3c4d5e")
				}
			}
			r.send(f, h2, body)
			logs.Write(r.logs.Bytes())
			for _, rec := range r.audit.all() {
				json.NewEncoder(&audits).Encode(rec)
			}
			for _, b := range r.bodies {
				bodies.WriteString(b)
			}
		}
		for _, k := range signatureHeaders {
			for _, v := range f.header.Values(k) {
				v = strings.TrimPrefix(strings.TrimPrefix(v, "sha256="), "sha1=")
				for what, out := range map[string]*bytes.Buffer{"log": &logs, "audit": &audits, "response": &bodies} {
					if strings.Contains(out.String(), v) {
						t.Errorf("%s: %s header value in the %s", f, k, what)
					}
				}
			}
		}
	}
	for p, secret := range testSecrets {
		for what, out := range map[string]*bytes.Buffer{"log": &logs, "audit": &audits, "response": &bodies} {
			if bytes.Contains(out.Bytes(), secret) {
				t.Errorf("%s secret in the %s", p, what)
			}
		}
	}
	for what, out := range map[string]*bytes.Buffer{"log": &logs, "audit": &audits} {
		// A body field that only the body has.
		if strings.Contains(out.String(), "retry transient errors") {
			t.Errorf("payload content in the %s", what)
		}
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) < 100 {
		t.Fatalf("only %d log lines", len(lines))
	}
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if _, ok := m["delivery"]; !ok {
			t.Errorf("log line without a delivery id: %s", line)
		}
	}
}

// TestConcurrentDeliveries sends 200 deliveries at once, each distinct event
// several times (same delivery id; for GitHub also the same body under a new
// id): each distinct event is enqueued exactly once.
func TestConcurrentDeliveries(t *testing.T) {
	gh := findFixture(t, GitHub, "push_tag")
	gl := findFixture(t, GitLab, "tag_push")
	type delivery struct {
		f    fixture
		h    http.Header
		body []byte
	}
	var all []delivery
	variant := func(f fixture, i int, idHeader string) (http.Header, []byte) {
		tag := fmt.Sprintf("v1.0.%d", i)
		body := bytes.Replace(f.body, []byte("refs/tags/v1.2.3"), []byte("refs/tags/"+tag), 1)
		h := f.clone()
		h.Set(idHeader, fmt.Sprintf("%08x-0000-4000-8000-%012x", i, len(all)))
		if f.provider == GitHub {
			h.Set("X-Hub-Signature-256", "sha256="+Sign(testSecrets[GitHub], body))
		}
		return h, body
	}
	for i := 0; i < 30; i++ { // 30 GitHub events × 4 deliveries
		h, body := variant(gh, i, "X-GitHub-Delivery")
		for j := 0; j < 3; j++ {
			all = append(all, delivery{gh, h, body})
		}
		h2 := h.Clone()
		h2.Set("X-GitHub-Delivery", fmt.Sprintf("ffffffff-0000-4000-8000-%012x", i))
		all = append(all, delivery{gh, h2, body})
	}
	for i := 30; i < 50; i++ { // 20 GitLab events × 4 deliveries
		h, body := variant(gl, i, "Idempotency-Key")
		for j := 0; j < 4; j++ {
			all = append(all, delivery{gl, h, body})
		}
	}
	if len(all) != 200 {
		t.Fatalf("%d deliveries", len(all))
	}

	r := newRig(t)
	var wg sync.WaitGroup
	start := make(chan struct{})
	statuses := make([]int, len(all))
	for i, d := range all {
		wg.Go(func() {
			<-start
			req := httptest.NewRequest(http.MethodPost, "/hooks/"+string(d.f.provider), bytes.NewReader(d.body))
			req.Header = d.h.Clone()
			w := httptest.NewRecorder()
			r.h.ServeHTTP(w, req)
			statuses[i] = w.Code
		})
	}
	close(start)
	wg.Wait()

	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	if counts[202] != 50 || counts[200] != 150 {
		t.Errorf("statuses %v, want 50×202 and 150×200", counts)
	}
	// Copies that race past the replay read are all handed to the sink:
	// the queue's message-id deduplication makes them one event (see
	// Sink). What must hold is one distinct request per distinct tag.
	tags := map[string]int{}
	for _, ev := range r.sink.events {
		tags[string(ev.Provider)+" "+ev.Tag]++
	}
	if len(tags) != 50 || len(r.sink.events) < 50 {
		t.Fatalf("%d requests enqueued for %d distinct tags, want 50 distinct tags", len(r.sink.events), len(tags))
	}
	t.Logf("%d requests for 50 tags reached the sink (racing copies, merged by the queue)", len(r.sink.events))
	if n := len(r.audit.all()); n != 200 {
		t.Errorf("%d audit records, want 200", n)
	}
}
