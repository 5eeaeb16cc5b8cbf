package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
)

// "A,B": A's 404 falls through to B, A's 500 does not.
func TestFetchCommaFallback(t *testing.T) {
	e := newEnv(t)
	tm := helloModule(t, "v1.0.0")
	e.db.set(tm.m, tm.record(t))
	second := newTestProxy(t)
	second.add(t, tm)
	f := e.fetcher(Options{GOPROXY: e.proxy.srv.URL + "," + second.srv.URL})

	mod, err := e.fetch(f, tm.m)
	if err != nil {
		t.Fatal(err)
	}
	mod.Remove()
	if mod.Proxy != second.srv.URL {
		t.Errorf("served by %s", mod.Proxy)
	}
	if n := e.proxy.count(""); n != 3 {
		t.Errorf("first proxy asked %d times, want 3 (.info, .mod, .zip)", n)
	}

	e.proxy.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "boom", http.StatusInternalServerError)
		return true
	})
	before := second.count("")
	_, err = e.fetch(e.fetcher(Options{GOPROXY: e.proxy.srv.URL + "," + second.srv.URL, Retries: 2}), tm.m)
	if !IsTransient(err) || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Fatalf("want transient after 3 attempts, got %v", err)
	}
	if n := second.count(""); n != before {
		t.Errorf("second proxy asked %d times after a 500 with ','", n-before)
	}
}

// "A|B": any error of A falls through to B.
func TestFetchPipeFallback(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(http.ResponseWriter, *http.Request) bool
	}{
		{"500", func(w http.ResponseWriter, r *http.Request) bool {
			http.Error(w, "boom", http.StatusInternalServerError)
			return true
		}},
		{"403", func(w http.ResponseWriter, r *http.Request) bool {
			http.Error(w, "not available", http.StatusForbidden)
			return true
		}},
		{"wrong info", func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasSuffix(r.URL.Path, ".info") {
				return false
			}
			w.Write(infoJSON("v1.0.1"))
			return true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tm := helloModule(t, "v1.0.0")
			e.publish(tm)
			second := newTestProxy(t)
			second.add(t, tm)
			e.proxy.setFault(tc.fault)

			mod, err := e.fetch(e.fetcher(Options{GOPROXY: e.proxy.srv.URL + "|" + second.srv.URL}), tm.m)
			if err != nil {
				t.Fatal(err)
			}
			mod.Remove()
			if n := second.count(".info"); n != 1 {
				t.Errorf("second proxy asked for .info %d times", n)
			}

			// The same failure with ',' is the verdict.
			_, err = e.fetch(e.fetcher(Options{GOPROXY: e.proxy.srv.URL + "," + second.srv.URL, Retries: -1}), tm.m)
			if err == nil || IsNotFound(err) {
				t.Fatalf("want an error with ',', got %v", err)
			}
			t.Log(err)
		})
	}
}

func TestFetchDirectAndOff(t *testing.T) {
	e := newEnv(t)
	m := module.Version{Path: "example.com/absent", Version: "v1.0.0"}
	for _, last := range []string{"direct", "off"} {
		_, err := e.fetch(e.fetcher(Options{GOPROXY: e.proxy.srv.URL + "," + last}), m)
		if !IsNotFound(err) || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), last) {
			t.Errorf("%s: want not found naming the 404 and %q, got %v", last, last, err)
		}
	}
}

func TestFetchRetry(t *testing.T) {
	e := newEnv(t)
	tm := helloModule(t, "v1.0.0")
	e.publish(tm)
	var mu sync.Mutex
	failures := 1
	e.proxy.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasSuffix(r.URL.Path, ".zip") && failures > 0 {
			failures--
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	var waits []int
	f := e.fetcher(Options{Backoff: func(retry int) time.Duration {
		mu.Lock()
		waits = append(waits, retry)
		mu.Unlock()
		return time.Millisecond
	}})
	mod, err := e.fetch(f, tm.m)
	if err != nil {
		t.Fatal(err)
	}
	mod.Remove()
	if n := e.proxy.count(".zip"); n != 2 {
		t.Errorf("%d zip requests, want 2", n)
	}
	if !slices.Equal(waits, []int{0}) {
		t.Errorf("backoff asked for retries %v", waits)
	}

	// Always failing: transient, after Retries+1 attempts.
	e.proxy.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, ".zip") {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	before := e.proxy.count(".zip")
	_, err = e.fetch(e.fetcher(Options{Retries: 2}), tm.m)
	if !IsTransient(err) || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "example.com/hello@v1.0.0: zip:") {
		t.Fatalf("want transient, got %v", err)
	}
	if n := e.proxy.count(".zip") - before; n != 3 {
		t.Errorf("%d zip requests, want 3", n)
	}
	if left := e.tempFiles(); len(left) > 0 {
		t.Errorf("left in TempDir: %q", left)
	}
}

// A proxy that stops sending is abandoned after Timeout, and retried.
func TestFetchStall(t *testing.T) {
	for _, where := range []string{"headers", "body"} {
		t.Run(where, func(t *testing.T) {
			e := newEnv(t)
			tm := helloModule(t, "v1.0.0")
			e.publish(tm)
			var mu sync.Mutex
			stalls := 1
			e.proxy.setFault(func(w http.ResponseWriter, r *http.Request) bool {
				mu.Lock()
				stall := strings.HasSuffix(r.URL.Path, ".zip") && stalls > 0
				if stall {
					stalls--
				}
				mu.Unlock()
				if !stall {
					return false
				}
				if where == "body" {
					w.Header().Set("Content-Length", fmt.Sprint(len(tm.zip)))
					w.Write(tm.zip[:10])
					w.(http.Flusher).Flush()
				}
				select {
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
				return true
			})
			start := time.Now()
			mod, err := e.fetch(e.fetcher(Options{Timeout: 200 * time.Millisecond}), tm.m)
			if err != nil {
				t.Fatal(err)
			}
			mod.Remove()
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			if n := e.proxy.count(".zip"); n != 2 {
				t.Errorf("%d zip requests, want 2", n)
			}
		})
	}
}

// Credentials in GOPROXY are sent, and never shown.
func TestCredentialsRedacted(t *testing.T) {
	const user, pass = "alice-user", "s3cret-token"
	e := newEnv(t)
	var logs bytes.Buffer
	logger := slogText(&logs)
	withCreds := strings.Replace(e.proxy.srv.URL, "http://", "http://"+user+":"+pass+"@", 1)
	echo := func(w http.ResponseWriter, r *http.Request) bool {
		// A server that quotes the request's credentials back.
		http.Error(w, "denied "+r.Header.Get("Authorization")+" "+user+":"+pass, http.StatusInternalServerError)
		return true
	}
	e.proxy.setFault(echo)
	tm := helloModule(t, "v1.0.0")

	_, err := e.fetch(e.fetcher(Options{GOPROXY: withCreds, Logger: logger}), tm.m)
	if !IsTransient(err) {
		t.Fatalf("want transient, got %v", err)
	}
	e.proxy.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "denied "+r.Header.Get("Authorization"), http.StatusForbidden)
		return true
	})
	_, err403 := e.fetch(e.fetcher(Options{GOPROXY: withCreds, Logger: logger}), tm.m)
	closed := "http://" + user + ":" + pass + "@" + closedAddr(t)
	_, errConn := e.fetch(e.fetcher(Options{GOPROXY: closed, Logger: logger, Retries: -1}), tm.m)
	_, errList := e.fetcher(Options{GOPROXY: withCreds, Logger: logger, Retries: -1}).List(context.Background(), "example.com/hello")
	_, errConfig := New(Options{GOPROXY: "ftp://" + user + ":" + pass + "@example.com", DB: e.db})
	_, errConfig2 := New(Options{GOPROXY: "https://" + user + ":" + pass + "@example.com/%zz", DB: e.db})

	e.proxy.mu.Lock()
	auth := slices.Clone(e.proxy.auth)
	e.proxy.mu.Unlock()
	if len(auth) == 0 || auth[0] != user+":"+pass {
		t.Errorf("basic auth received: %q", auth)
	}
	for _, err := range []error{err, err403, errConn, errList, errConfig, errConfig2} {
		if err == nil {
			t.Fatal("no error")
		}
		t.Log(err)
		for _, secret := range []string{user, pass, "YWxpY2"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows %q: %v", secret, err)
			}
		}
	}
	if !strings.Contains(err.Error(), "REDACTED") {
		t.Errorf("error = %v", err)
	}
	for _, secret := range []string{user, pass, "YWxpY2"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs show %q:\n%s", secret, logs.String())
		}
	}
}

func TestParseGOPROXY(t *testing.T) {
	type entry struct {
		shown    string
		fallBack bool
	}
	for _, tc := range []struct {
		list    string
		want    []entry
		wantErr string
	}{
		{"https://a.example,https://b.example", []entry{{"https://a.example", false}, {"https://b.example", false}}, ""},
		{"https://a.example|https://b.example/,direct", []entry{{"https://a.example", true}, {"https://b.example", false}, {"direct", false}}, ""},
		{" proxy.example.com/x , off", []entry{{"https://proxy.example.com/x", false}, {"off", false}}, ""},
		{"https://a.example,direct,https://b.example", []entry{{"https://a.example", false}, {"direct", false}}, ""},
		{",,https://a.example", []entry{{"https://a.example", false}}, ""},
		{"https://u:p@a.example", []entry{{"https://REDACTED@a.example", false}}, ""},
		{"direct", nil, "no http or https proxy"},
		{"off", nil, "no http or https proxy"},
		{"direct,https://a.example", nil, "no http or https proxy"},
		{",", nil, "no http or https proxy"},
		{"file:///srv/proxy", nil, "file:// proxies are not supported"},
		{"ftp://a.example", nil, "unsupported scheme"},
		{"noproxy", nil, "not a URL"},
		{"https://a.example?x=1", nil, "no query"},
	} {
		ps, err := parseGOPROXY(tc.list)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrConfig) {
				t.Errorf("%q: want error %q, got %v", tc.list, tc.wantErr, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.list, err)
			continue
		}
		var got []entry
		for _, p := range ps {
			got = append(got, entry{p.shown, p.fallBack})
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.list, got, tc.want)
		}
	}
}

// closedAddr is an address nobody listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func slogText(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
