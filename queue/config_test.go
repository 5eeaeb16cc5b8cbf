package queue

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"embedded", Config{StoreDir: "/d"}, ""},
		{"embedded no listener", Config{StoreDir: "/d", NoListen: true}, ""},
		{"embedded random port", Config{StoreDir: "/d", Listen: "127.0.0.1:-1"}, ""},
		{"embedded localhost", Config{StoreDir: "/d", Listen: "localhost:4222"}, ""},
		{"embedded ipv6 loopback", Config{StoreDir: "/d", Listen: "[::1]:4222"}, ""},
		{"external", Config{URL: "nats://nats.example.com:4222", Replicas: 3, Creds: "/c"}, ""},
		{"external tls", Config{URL: "tls://nats.example.com:4222", TLSCert: "c", TLSKey: "k"}, ""},
		{"no store", Config{}, "store dir"},
		{"all interfaces", Config{StoreDir: "/d", Listen: "0.0.0.0:4222"}, "not a loopback"},
		{"all interfaces, insecure", Config{StoreDir: "/d", Listen: ":4222", InsecureListenNonLoopback: true}, ""},
		{"bad listen", Config{StoreDir: "/d", Listen: "4222"}, "listen"},
		{"bad url", Config{URL: "http://x"}, "url"},
		{"cert without key", Config{URL: "nats://x:4222", TLSCert: "c"}, "tls cert"},
		{"creds without url", Config{StoreDir: "/d", Creds: "/c"}, "external url"},
		{"embedded replicas", Config{StoreDir: "/d", Replicas: 3}, "one replica"},
		{"ack wait", Config{StoreDir: "/d", AckWait: time.Millisecond}, "ack wait"},
		{"max deliver", Config{StoreDir: "/d", MaxDeliver: -1}, "max deliver"},
		{"backoff", Config{StoreDir: "/d", Backoff: []time.Duration{time.Second, 0}}, "backoff"},
		{"dedup longer than retention", Config{StoreDir: "/d", DedupWindow: time.Hour, EventMaxAge: time.Minute}, "dedup window"},
		{"workers", Config{StoreDir: "/d", Workers: -2}, "workers"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.WithDefaults().Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{StoreDir: "/d", Workers: 5}.WithDefaults()
	if c.Listen != "127.0.0.1:4222" || c.ReverifyWorkers != 2 || c.MaxDeliver != 5 || c.DedupWindow != 10*time.Minute || c.AckWait != 30*time.Second {
		t.Errorf("defaults %+v", c)
	}
	for n, want := range map[int]time.Duration{0: 2 * time.Second, 1: 2 * time.Second, 2: 10 * time.Second, 4: 5 * time.Minute, 9: 5 * time.Minute} {
		if got := c.backoff(n); got != want {
			t.Errorf("backoff(%d) = %v, want %v", n, got, want)
		}
	}
}

// kvKey is the KV key syntax (jetstream's own check, plus its rules on dots).
var kvKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

func TestEscapeKey(t *testing.T) {
	for _, s := range []string{
		"example.com/m@v1.0.0",
		"example.com/m/v2@v2.0.0+incompatible",
		"github.com/!azure/sdk@v1.0.0-rc.1",
		"a=b..c~d",
		"20260101T000000.000Z-0123456789abcdef",
		"\x00\xff",
	} {
		k := EscapeKey(s)
		if !kvKey.MatchString(k) || strings.Contains(k, ".") {
			t.Errorf("EscapeKey(%q) = %q: not a one-token key", s, k)
		}
		if back, err := UnescapeKey(k); err != nil || back != s {
			t.Errorf("UnescapeKey(%q) = %q, %v; want %q", k, back, err, s)
		}
	}
	if got := EscapeKey("example.com/m@v1.0.0"); got != "example=2Ecom/m=40v1=2E0=2E0" {
		t.Errorf("EscapeKey = %q", got)
	}
	for _, bad := range []string{"=", "=4", "=4g", "=zz"} {
		if _, err := UnescapeKey(bad); err == nil {
			t.Errorf("UnescapeKey(%q) succeeded", bad)
		}
	}
}

func TestMsgID(t *testing.T) {
	a := Request{Kind: KindAdmit, Repo: "r", Tag: "v1.0.0", Commit: "c", EventID: "e1", Source: "webhook"}
	b := a
	b.EventID, b.Source, b.Time = "e2", "cli", time.Now()
	if MsgID(a) != MsgID(b) {
		t.Error("event id, source or time changed the message id")
	}
	for _, c := range []Request{
		{Kind: KindReverify, Repo: "r", Tag: "v1.0.0", Commit: "c"},
		{Kind: KindAdmit, Repo: "r", Tag: "v1.0.0", Commit: "d"},
		{Kind: KindAdmit, Repo: "rv", Tag: "1.0.0", Commit: "c"}, // fields do not run together
		{Kind: KindAdmit, Repo: "r", Tag: "v1.0.0", Commit: "c", Nonce: "n"},
	} {
		if MsgID(c) == MsgID(a) {
			t.Errorf("MsgID(%+v) = MsgID(%+v)", c, a)
		}
	}
}
