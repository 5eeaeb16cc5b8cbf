//go:build unix

// Stress tests of `modgate serve` as a real process (issue 5: webhook-
// triggered admissions through NATS JetStream workers, crash-safe and
// exactly-once in effect).
//
// Both tests run the modgate binary (the copy of this test binary that
// testscript.Main puts on $PATH as "modgate") as `modgate serve` in a
// subprocess, against an HTTPS git host running the real git http-backend
// that serves one bare repository with many tags signed by real gpg and
// ssh-keygen keys (testrepo), with a checksum database key and a GitHub
// webhook secret, exactly as testdata/script/webhook_to_proxy.txtar does.
// Deliveries are GitHub push payloads signed with webhook.Sign.
//
// TestServeCrash: for each run (3 by default, MODGATE_STRESS_RUNS to change,
// seeds from MODGATE_STRESS_SEED on, default 1; runs are parallel subtests),
// a fresh data directory and 60 distinct signed tags, each delivered once:
// 20 in a burst of concurrent deliveries, 40 at a random pace by two
// senders, while the serving process is killed with SIGKILL 3 to 5 times at
// random points (the first one 1-40 ms into the burst, the others mostly
// while workers admit; sometimes again while it recovers) and restarted on
// the same data directory each time. A delivery that fails (connection
// refused or cut, 503) is redelivered with the same delivery id and body,
// as a git host does. Throughout, two pollers check the store directly (every version in
// @v/list has .info, .mod, .zip, .ziphash; the zip hashes to .ziphash; no
// file of a listed version is ever replaced: same inode, size and mtime;
// no version ever leaves the list) and over HTTP while the server is up
// (list, .info, .mod, .zip answer 200, the zip served hashes to the stored
// hash, the checksum database serves the version's record). At the end,
// with the queue drained: every tag has exactly one event in
// MODGATE_EVENTS, every event exactly one verdict (modgate_event_verdicts)
// and exactly one verdict record in the audit stream, every version exactly
// one "admitted" verdict, the checksum log exactly one record per version
// (its size equals the number of versions), and `modgate verify` reports 0
// findings.
//
// MODGATE_STRESS_KEEP=1 keeps each instance (configuration, data, one log
// per serving process) in a directory under $TMPDIR for a post-mortem.
//
// TestServeLoad: 1,000 deliveries sent by 32 goroutines at once over 100
// tags: 600 distinct valid deliveries (6 per tag, each with its own delivery
// id: the canonical body twice, two bodies that differ only in
// sender/pusher, two bodies that also name the tag's commit in head_commit),
// 300 exact redeliveries (30%: same delivery id, same body as one of those)
// and 100 deliveries with a bad signature (10%, half of them under a valid
// delivery's id). Expected: every bad one 401; per tag exactly 5 deliveries
// 202 (one per distinct body: the replay record refuses a repeated delivery
// id or a repeated signed body with 200 duplicate), carrying 2 event ids
// (JetStream deduplicates the requests without a commit into one event, and
// those with the commit into another); every event one verdict; per tag
// exactly one "admitted" verdict in the audit stream, the other event
// "duplicate"; one audit record per request. It reports the sending wall
// time, deliveries/s, and the time until every verdict is in.
//
// When this file was written TestServeLoad passed (about 35 s) and
// TestServeCrash (about 100 s) failed on two bugs, in 17 of 38 runs over
// seeds 1-11:
//   - a delivery cut by the kill after its replay record was stored but
//     before its event was enqueued is lost: the redelivery is answered
//     "200 duplicate, delivery id already received" and the tag is never
//     admitted (its version never appears);
//   - a job killed after the store published its version but before its
//     verdict was committed ends, on redelivery, with the only verdict
//     "duplicate": the version is served but no "admitted" verdict, audit
//     record or modgate.events.admitted message ever exists for it.
package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"

	"github.com/modgate/modgate/internal/testrepo"
	"github.com/modgate/modgate/queue"
	"github.com/modgate/modgate/sbom"
	"github.com/modgate/modgate/sumlog"
	"github.com/modgate/modgate/webhook"
)

const (
	stressModule  = "corp.example/hello"
	stressSumName = "sum.corp.example"
	stressSecret  = "s3cret-shared-with-the-git-host"
	stressGoMod   = "module corp.example/hello\n\ngo 1.21\n"
)

// ---------------------------------------------------------------------------
// The git host and the modgate binary.

// stressHost is the git host with one bare repository of signed tags, the
// keys, and the modgate binary.
type stressHost struct {
	keys    *testrepo.Keys
	url     string // https://127.0.0.1:port, the git host
	caFile  string // its certificate, for GIT_SSL_CAINFO
	tags    []string
	commits map[string]string // tag -> commit
	bin     string
}

// newStressHost makes a repository with ntags tags v1.0.0 … on as many
// commits, every third signed with ssh, the others with gpg, and serves its
// bare clone over HTTPS with git http-backend until the test ends.
func newStressHost(t *testing.T, ntags int) *stressHost {
	t.Helper()
	testrepo.Require(t)
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Skipf("git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Skipf("no git http-backend: %v", err)
	}
	dir := t.TempDir()
	t0 := time.Now()
	h := &stressHost{keys: testrepo.NewKeys(t, filepath.Join(dir, "keys")), commits: map[string]string{}}
	r := testrepo.NewRepo(t, h.keys, filepath.Join(dir, "work"))
	r.Module("", stressModule)
	for i := range ntags {
		tag := fmt.Sprintf("v1.0.%d", i)
		r.Write(map[string]string{"version.go": fmt.Sprintf("package hello\n\n// Version is this release.\nconst Version = %q\n", tag)})
		h.commits[tag] = r.Commit("release " + tag)
		if i%3 == 2 {
			r.TagSSH(tag)
		} else {
			r.TagGPG(tag)
		}
		h.tags = append(h.tags, tag)
	}
	repos := filepath.Join(dir, "repos")
	r.Git("clone", "-q", "--bare", ".", filepath.Join(repos, "hello.git"))

	srv := httptest.NewTLSServer(&cgi.Handler{
		Path: backend,
		Env:  []string{"GIT_PROJECT_ROOT=" + repos, "GIT_HTTP_EXPORT_ALL=1"},
	})
	t.Cleanup(srv.Close)
	h.url = srv.URL
	h.caFile = filepath.Join(dir, "githost-ca.pem")
	writeFile(t, h.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	h.bin = modgateBinary(t)
	t.Logf("git host %s: %d signed tags in %v", h.url, ntags, time.Since(t0).Round(time.Millisecond))
	return h
}

// modgateBinary is the modgate program: the copy of this test binary that
// testscript.Main (TestMain) installs on $PATH as "modgate" and that runs
// main() under that name; failing that, one built with go build.
func modgateBinary(t *testing.T) string {
	if p, err := exec.LookPath("modgate"); err == nil && strings.Contains(p, "testscript-main") {
		return p
	}
	bin := filepath.Join(t.TempDir(), "modgate")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/modgate/modgate/cmd/modgate").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func writeFile(t *testing.T, name string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, data, mode); err != nil {
		t.Fatal(err)
	}
}

// stressInstance is one data directory and configuration.
type stressInstance struct {
	dir, cfgFile, store, skey string
	port, natsPort            int
}

// newInstance writes the configuration, the checksum database key and the
// webhook secret into a fresh directory.
func (h *stressHost) newInstance(t *testing.T) *stressInstance {
	t.Helper()
	in := &stressInstance{dir: t.TempDir()}
	if os.Getenv("MODGATE_STRESS_KEEP") != "" {
		// Keep the configuration, data and serve logs for a post-mortem.
		dir, err := os.MkdirTemp("", "modgate-stress-")
		if err != nil {
			t.Fatal(err)
		}
		in.dir = dir
		t.Logf("MODGATE_STRESS_KEEP: instance in %s", dir)
	}
	skey, _, err := sumlog.GenerateKey(stressSumName)
	if err != nil {
		t.Fatal(err)
	}
	in.skey = skey
	writeFile(t, filepath.Join(in.dir, "sumdb.key"), []byte(skey+"\n"), 0o600)
	writeFile(t, filepath.Join(in.dir, "github.secret"), []byte(stressSecret+"\n"), 0o600)
	// Signed, so that after the kills `modgate verify` also holds every
	// SBOM, bundle, .info and record to the summary signed with them.
	cosignKey, _, err := sbom.GenerateKeys([]byte("stress"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(in.dir, "cosign.key"), cosignKey, 0o600)
	writeFile(t, filepath.Join(in.dir, "cosign.pw"), []byte("stress\n"), 0o600)
	cfg := fmt.Sprintf(`checksum_db:
  key_file: sumdb.key
signing:
  key_file: cosign.key
  password_file: cosign.pw
webhooks:
  github:
    secret_file: github.secret
repositories:
  - url: %s/hello.git
    modules: [%s]
signers:
  - name: release-team
    modules: [corp.example]
    openpgp_keys: [%s]
    ssh_allowed_signers: %s
`, h.url, stressModule, h.keys.GPGPublic, h.keys.AllowedSigners)
	in.cfgFile = filepath.Join(in.dir, "modgate.yaml")
	writeFile(t, in.cfgFile, []byte(cfg), 0o644)
	in.store = filepath.Join(in.dir, "data", "store")
	for _, p := range []*int{&in.port, &in.natsPort} {
		if *p, err = freePort(); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(in.dir, "home"), 0o755); err != nil {
		t.Fatal(err)
	}
	return in
}

func (in *stressInstance) base() string    { return fmt.Sprintf("http://127.0.0.1:%d", in.port) }
func (in *stressInstance) natsURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", in.natsPort) }

// ---------------------------------------------------------------------------
// The serving process.

// serveProc runs `modgate serve` on an instance, and kills and restarts it.
type serveProc struct {
	t    *testing.T
	h    *stressHost
	in   *stressInstance
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	n    int           // processes started
	// life[i] is when process i+1 started and was killed (zero: not killed).
	life [][2]time.Time
}

func newServeProc(t *testing.T, h *stressHost, in *stressInstance) *serveProc {
	s := &serveProc{t: t, h: h, in: in}
	t.Cleanup(func() {
		if s.running() {
			s.kill()
		}
	})
	return s
}

func (s *serveProc) running() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// start starts a serving process; it does not wait for it to be ready.
func (s *serveProc) start() {
	s.t.Helper()
	s.n++
	logf, err := os.Create(filepath.Join(s.in.dir, fmt.Sprintf("serve-%02d.log", s.n)))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.h.bin, "serve", "--config", s.in.cfgFile,
		"--listen", fmt.Sprintf("127.0.0.1:%d", s.in.port), "--nats-listen", fmt.Sprintf("127.0.0.1:%d", s.in.natsPort))
	cmd.Dir = s.in.dir
	cmd.Env = append(os.Environ(),
		"HOME="+filepath.Join(s.in.dir, "home"),
		"GIT_SSL_CAINFO="+s.h.caFile,
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GOPROXY=off", "GOSUMDB=off", "GONOSUMDB=", "GOPRIVATE=", "GONOPROXY=", "GOFLAGS=", "GOTOOLCHAIN=local",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.t.Fatalf("start modgate serve: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	s.life = append(s.life, [2]time.Time{time.Now()})
}

// waitReady waits until /readyz answers 200 and returns how long that took.
func (s *serveProc) waitReady(timeout time.Duration) time.Duration {
	s.t.Helper()
	t0 := time.Now()
	c := &http.Client{Timeout: 2 * time.Second}
	for time.Since(t0) < timeout {
		select {
		case <-s.done:
			s.t.Fatalf("modgate serve (start %d) exited with %v before it was ready:\n%s", s.n, s.cmd.ProcessState, s.logTail(s.n, 40))
		default:
		}
		resp, err := c.Get(s.in.base() + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return time.Since(t0)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("modgate serve (start %d) not ready within %v:\n%s", s.n, timeout, s.logTail(s.n, 40))
	return 0
}

// kill kills the serving process with SIGKILL and waits for it to be gone.
func (s *serveProc) kill() {
	s.cmd.Process.Kill()
	s.life[s.n-1][1] = time.Now()
	<-s.done
}

// at says which process ran at t, and when it was started and killed.
func (s *serveProc) at(t time.Time) string {
	for i := len(s.life) - 1; i >= 0; i-- {
		if l := s.life[i]; !t.Before(l[0]) {
			killed := "not killed"
			if !l[1].IsZero() {
				killed = "SIGKILLed at " + l[1].Format("15:04:05.000")
			}
			return fmt.Sprintf("process %d (started %s, %s)", i+1, l[0].Format("15:04:05.000"), killed)
		}
	}
	return "no process"
}

// stop stops the serving process with SIGINT, as an operator does, and
// reports whether it exited in time (it is killed otherwise).
func (s *serveProc) stop(timeout time.Duration) error {
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
		if !s.cmd.ProcessState.Success() {
			return fmt.Errorf("modgate serve exited with %v after SIGINT", s.cmd.ProcessState)
		}
		return nil
	case <-time.After(timeout):
		s.kill()
		return fmt.Errorf("modgate serve did not stop within %v of SIGINT", timeout)
	}
}

// logTail returns the last n lines of the log of process number i.
func (s *serveProc) logTail(i, n int) string {
	data, _ := os.ReadFile(filepath.Join(s.in.dir, fmt.Sprintf("serve-%02d.log", i)))
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logLines returns the log lines of every process that contain all of subs.
func (s *serveProc) logLines(subs ...string) []string {
	var out []string
	for i := 1; i <= s.n; i++ {
		data, _ := os.ReadFile(filepath.Join(s.in.dir, fmt.Sprintf("serve-%02d.log", i)))
	lines:
		for _, l := range strings.Split(string(data), "\n") {
			for _, sub := range subs {
				if !strings.Contains(l, sub) {
					continue lines
				}
			}
			out = append(out, fmt.Sprintf("[%d] %s", i, l))
		}
	}
	return out
}

// logProblems logs the serving processes' errors and warnings (the first
// 40) when there are findings.
func (s *serveProc) logProblems(t *testing.T, f *findings) {
	if len(f.all()) == 0 {
		return
	}
	lines := append(s.logLines(`"level":"ERROR"`), s.logLines(`"level":"WARN"`)...)
	for i, l := range lines {
		if i == 40 {
			t.Logf("… and %d more log lines", len(lines)-40)
			break
		}
		if len(l) > 600 {
			l = l[:600] + "…"
		}
		t.Log(l)
	}
}

// ---------------------------------------------------------------------------
// Deliveries.

// pushBody is a GitHub push payload for tag; sender varies the body without
// changing the event, commit (when set) names the tag's commit in
// head_commit, which makes it another queue event.
func (h *stressHost) pushBody(tag, sender, commit string) []byte {
	head := "null"
	if commit != "" {
		head = fmt.Sprintf(`{"id":%q,"message":"release %s"}`, commit, tag)
	}
	return fmt.Appendf(nil, `{"ref":"refs/tags/%s","before":"0000000000000000000000000000000000000000","after":"1111111111111111111111111111111111111111","created":true,"deleted":false,"forced":false,"base_ref":null,"compare":"","commits":[],"head_commit":%s,"repository":{"id":1,"name":"hello","full_name":"corp/hello","clone_url":"%s/hello.git","ssh_url":"git@git.corp.example:corp/hello.git","html_url":"%s/hello"},"pusher":{"name":%q,"email":"releng@example.com"},"sender":{"login":%q}}`,
		tag, head, h.url, h.url, sender, sender)
}

// hookAnswer is the webhook endpoint's answer.
type hookAnswer struct {
	Status  int    `json:"-"`
	Result  string `json:"result"`
	Reason  string `json:"reason"`
	EventID string `json:"event_id"`
}

// deliver posts one GitHub delivery, signed with secret. An error is a
// transport failure (the server is down, or died during the request).
func deliver(ctx context.Context, c *http.Client, base string, body []byte, id string, secret []byte) (hookAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/hooks/github", bytes.NewReader(body))
	if err != nil {
		return hookAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", "sha256="+webhook.Sign(secret, body))
	resp, err := c.Do(req)
	if err != nil {
		return hookAnswer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return hookAnswer{}, err
	}
	var a hookAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		return hookAnswer{}, fmt.Errorf("status %d, body %q: %v", resp.StatusCode, data, err)
	}
	a.Status = resp.StatusCode
	return a, nil
}

// ---------------------------------------------------------------------------
// Findings.

// findings collects violations from every goroutine.
type findings struct {
	mu   sync.Mutex
	list []string
}

func (f *findings) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = append(f.list, fmt.Sprintf(format, args...))
}

func (f *findings) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.list)
}

// report fails t with every finding (the first 40).
func (f *findings) report(t *testing.T) {
	t.Helper()
	list := f.all()
	for i, s := range list {
		if i == 40 {
			t.Errorf("… and %d more", len(list)-40)
			break
		}
		t.Errorf("VIOLATION: %s", s)
	}
}

// ---------------------------------------------------------------------------
// The pollers.

// fileStamp identifies one file's content: a file replaced or rewritten
// changes it.
type fileStamp struct {
	ino   uint64
	size  int64
	mtime int64
}

func stampOf(fi os.FileInfo) fileStamp {
	s := fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = uint64(st.Ino)
	}
	return s
}

// storeWatch polls the store directory: every version in @v/list must be
// complete, its zip must hash to its .ziphash, no file of a listed version
// may change, and no version may leave the list.
type storeWatch struct {
	dir    string // <store>/corp.example/hello/@v
	f      *findings
	stamps map[string]map[string]fileStamp // version -> file name -> stamp
	order  []string                        // versions in the order first seen
	seen   map[string]time.Time            // version -> when first seen listed
	lists  atomic.Int64                    // lists read
	max    atomic.Int64                    // most versions listed at once
}

func newStoreWatch(store string, f *findings) *storeWatch {
	return &storeWatch{dir: filepath.Join(store, filepath.FromSlash(stressModule), "@v"), f: f,
		stamps: map[string]map[string]fileStamp{}, seen: map[string]time.Time{}}
}

func (w *storeWatch) run(ctx context.Context) {
	lastSweep := time.Now()
	for ctx.Err() == nil {
		w.poll()
		if time.Since(lastSweep) > 200*time.Millisecond {
			w.sweep()
			lastSweep = time.Now()
		}
		time.Sleep(3 * time.Millisecond)
	}
	w.poll()
	w.sweep()
}

func (w *storeWatch) poll() {
	data, err := os.ReadFile(filepath.Join(w.dir, "list"))
	if errors.Is(err, os.ErrNotExist) {
		if len(w.order) > 0 {
			w.f.add("store: @v/list disappeared after listing %d versions", len(w.order))
		}
		return
	}
	if err != nil {
		w.f.add("store: reading @v/list: %v", err)
		return
	}
	w.lists.Add(1)
	listed := strings.Fields(string(data))
	w.max.Store(max(w.max.Load(), int64(len(listed))))
	set := map[string]bool{}
	for _, v := range listed {
		if set[v] {
			w.f.add("store: %s twice in @v/list %q", v, data)
		}
		set[v] = true
	}
	for _, v := range w.order {
		if !set[v] {
			w.f.add("store: %s left @v/list (list now %q)", v, data)
		}
	}
	for _, v := range listed {
		if _, ok := w.stamps[v]; !ok {
			w.first(v)
		}
	}
}

// first checks a version the first time it is listed, and stamps its files.
func (w *storeWatch) first(v string) {
	stamps := map[string]fileStamp{}
	w.stamps[v] = stamps
	w.seen[v] = time.Now()
	w.order = append(w.order, v)
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		w.f.add("store: %s listed, reading @v: %v", v, err)
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), v+".") {
			if fi, err := e.Info(); err == nil {
				stamps[e.Name()] = stampOf(fi)
			}
		}
	}
	for _, s := range []string{".info", ".mod", ".zip", ".ziphash"} {
		if _, ok := stamps[v+s]; !ok {
			w.f.add("store: %s listed without %s%s", v, v, s)
		}
	}
	ziphash, err := os.ReadFile(filepath.Join(w.dir, v+".ziphash"))
	if err != nil {
		return
	}
	h, err := dirhash.HashZip(filepath.Join(w.dir, v+".zip"), dirhash.Hash1)
	if err != nil || h != strings.TrimSpace(string(ziphash)) {
		w.f.add("store: %s listed, zip hashes to %s (err %v), .ziphash says %q", v, h, err, ziphash)
	}
	if mod, err := os.ReadFile(filepath.Join(w.dir, v+".mod")); err == nil && string(mod) != stressGoMod {
		w.f.add("store: %s.mod is %q", v, mod)
	}
	var info struct{ Version string }
	if data, err := os.ReadFile(filepath.Join(w.dir, v+".info")); err == nil {
		if err := json.Unmarshal(data, &info); err != nil || info.Version != v {
			w.f.add("store: %s.info is %q (%v)", v, data, err)
		}
	}
}

// sweep re-stamps every file of every listed version.
func (w *storeWatch) sweep() {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		if len(w.order) > 0 {
			w.f.add("store: reading @v: %v", err)
		}
		return
	}
	now := map[string]fileStamp{}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			now[e.Name()] = stampOf(fi)
		}
	}
	for _, v := range w.order {
		for name, s := range w.stamps[v] {
			switch n, ok := now[name]; {
			case !ok:
				w.f.add("store: %s of listed %s was removed", name, v)
				delete(w.stamps[v], name)
			case n != s:
				w.f.add("store: %s of listed %s changed: %+v, was %+v", name, v, n, s)
				w.stamps[v][name] = n
			}
		}
		for name, s := range now {
			if _, ok := w.stamps[v][name]; !ok && strings.HasPrefix(name, v+".") {
				w.f.add("store: %s appeared after %s was listed", name, v)
				w.stamps[v][name] = s
			}
		}
	}
}

// httpWatch polls the proxy while it is up: every listed version's .info,
// .mod and .zip answer 200, the zip served hashes to the stored .ziphash,
// and the checksum database serves the version's record. Transport errors
// (the server is down or was killed mid-answer) are skipped.
type httpWatch struct {
	base, store string
	f           *findings
	c           *http.Client
	checked     map[string]bool
	order       []string
	ok          atomic.Int64 // lists read
	down        atomic.Int64 // transport errors
	// served are the versions seen with a .info in the store, so served by
	// version before any list names them, whose record was then looked up.
	served map[string]bool
}

func newHTTPWatch(base, store string, f *findings) *httpWatch {
	return &httpWatch{base: base, store: store, f: f, checked: map[string]bool{}, served: map[string]bool{},
		c: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
}

var errTransport = errors.New("transport")

func (w *httpWatch) get(path string) (int, []byte, error) {
	resp, err := w.c.Get(w.base + path)
	if err != nil {
		w.down.Add(1)
		return 0, nil, errTransport
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		w.down.Add(1)
		return 0, nil, errTransport
	}
	return resp.StatusCode, data, nil
}

func (w *httpWatch) run(ctx context.Context) {
	for ctx.Err() == nil {
		w.poll()
		time.Sleep(15 * time.Millisecond)
	}
}

func (w *httpWatch) poll() {
	status, data, err := w.get("/" + stressModule + "/@v/list")
	if err != nil {
		return
	}
	if status != 200 {
		if len(w.order) > 0 || status != http.StatusNotFound {
			w.f.add("http: GET @v/list: %d %q after %d versions were listed", status, data, len(w.order))
		}
		return
	}
	w.ok.Add(1)
	w.checkServed()
	listed := strings.Fields(string(data))
	for _, v := range w.order {
		if !slices.Contains(listed, v) {
			w.f.add("http: %s left @v/list (list now %q)", v, data)
		}
	}
	for _, v := range listed {
		if !w.checked[v] && w.check(v) {
			w.checked[v] = true
			w.order = append(w.order, v)
		}
	}
}

// checkServed looks up, in the checksum database, each version that has
// become served (its .info exists) since the last poll, listed or not: the
// go command fetches a version it is asked for without reading the list,
// and must then find its record.
func (w *httpWatch) checkServed() {
	entries, err := os.ReadDir(filepath.Join(w.store, filepath.FromSlash(stressModule), "@v"))
	if err != nil {
		return
	}
	for _, e := range entries {
		v, ok := strings.CutSuffix(e.Name(), ".info")
		if !ok || w.served[v] {
			continue
		}
		status, data, err := w.get("/sumdb/" + stressSumName + "/lookup/" + stressModule + "@" + v)
		if err != nil {
			return
		}
		if status != 200 {
			w.f.add("http: %s is served (its .info exists) but the checksum database answers %d %q", v, status, data)
		}
		w.served[v] = true
	}
}

// check checks one listed version; false after a transport error.
func (w *httpWatch) check(v string) bool {
	prefix := "/" + stressModule + "/@v/" + v
	bodies := map[string][]byte{}
	for _, s := range []string{".info", ".mod", ".zip"} {
		status, data, err := w.get(prefix + s)
		if err != nil {
			return false
		}
		if status != 200 {
			w.f.add("http: %s is listed but GET %s%s answers %d %q", v, v, s, status, data)
			return true
		}
		bodies[s] = data
	}
	if string(bodies[".mod"]) != stressGoMod {
		w.f.add("http: %s.mod is %q", v, bodies[".mod"])
	}
	ziphash, err := os.ReadFile(filepath.Join(w.store, filepath.FromSlash(stressModule), "@v", v+".ziphash"))
	if err != nil {
		w.f.add("http: %s served, but the store has no .ziphash: %v", v, err)
		return true
	}
	want := strings.TrimSpace(string(ziphash))
	if h, err := hashZipBytes(bodies[".zip"]); err != nil || h != want {
		w.f.add("http: %s.zip served hashes to %s (err %v), the store says %s", v, h, err, want)
	}
	status, data, err := w.get("/sumdb/" + stressSumName + "/lookup/" + stressModule + "@" + v)
	if err != nil {
		return false
	}
	if line := fmt.Sprintf("%s %s %s\n", stressModule, v, want); status != 200 || !strings.Contains(string(data), line) {
		w.f.add("http: %s is listed but the checksum database answers %d %q, want a record with %q", v, status, data, line)
	}
	return true
}

// hashZipBytes is dirhash.HashZip for a zip in memory.
func hashZipBytes(data []byte) (string, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", err
	}
	files := map[string]*zip.File{}
	var names []string
	for _, f := range zr.File {
		files[f.Name] = f
		names = append(names, f.Name)
	}
	return dirhash.Hash1(names, func(name string) (io.ReadCloser, error) { return files[name].Open() })
}

// ---------------------------------------------------------------------------
// The final state, read from NATS.

// finalState is what NATS holds at the end of a run.
type finalState struct {
	events      map[string][]string            // tag -> event ids of the admit requests in MODGATE_EVENTS
	eventTag    map[string]string              // event id -> tag
	verdicts    map[string]queue.Record        // event id -> its verdict
	auditVerd   map[string][]queue.AuditRecord // event id -> verdict and dead-letter records
	admitted    map[string][]string            // module@version -> event ids with an "admitted" audit verdict
	auditByType map[string]int
	webhookAud  []webhook.AuditRecord // details of webhook and security (401) records
}

// readFinal reads every admit request, its verdict, and the audit stream.
func readFinal(ctx context.Context, t *testing.T, qc *queue.Conn) *finalState {
	t.Helper()
	fs := &finalState{events: map[string][]string{}, eventTag: map[string]string{}, verdicts: map[string]queue.Record{},
		auditVerd: map[string][]queue.AuditRecord{}, admitted: map[string][]string{}, auditByType: map[string]int{}}
	js := qc.JetStream()
	st, err := js.Stream(ctx, queue.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(queue.SubjectAdmit))
	if err != nil {
		t.Fatal(err)
	}
	n := int(info.State.Subjects[queue.SubjectAdmit])
	if n > 0 {
		cons, err := js.OrderedConsumer(ctx, queue.EventsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{queue.SubjectAdmit}})
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
			if err != nil {
				t.Fatalf("reading %s: %v", queue.SubjectAdmit, err)
			}
			var r queue.Request
			if err := json.Unmarshal(m.Data(), &r); err != nil {
				t.Fatalf("request %q: %v", m.Data(), err)
			}
			fs.events[r.Tag] = append(fs.events[r.Tag], r.EventID)
			fs.eventTag[r.EventID] = r.Tag
		}
	}
	for id := range fs.eventTag {
		natsRetry(t, "verdict of event "+id, func() error {
			rec, err := qc.EventVerdict(ctx, id)
			if err == nil {
				fs.verdicts[id] = rec
			}
			return err
		})
	}
	err = qc.ReadAudit(ctx, time.Time{}, func(r queue.AuditRecord) error {
		fs.auditByType[r.Type]++
		switch r.Type {
		case queue.AuditVerdict, queue.AuditDeadLetter:
			fs.auditVerd[r.EventID] = append(fs.auditVerd[r.EventID], r)
			if r.Type == queue.AuditVerdict && r.Result == "admitted" {
				fs.admitted[r.Key] = append(fs.admitted[r.Key], r.EventID)
			}
		case "webhook", queue.AuditSecurity:
			var w webhook.AuditRecord
			if json.Unmarshal(r.Detail, &w) == nil && w.Provider != "" {
				fs.webhookAud = append(fs.webhookAud, w)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the audit stream: %v", err)
	}
	return fs
}

// checkEvents checks that every event has exactly one verdict, recorded once
// in the audit stream, and that every tag's version was admitted exactly
// once and is in the checksum database.
func (fs *finalState) checkEvents(f *findings, tags []string) {
	for id, tag := range fs.eventTag {
		key := stressModule + "@" + tag
		rec, ok := fs.verdicts[id]
		if !ok {
			f.add("event %s (%s) has no verdict", id, tag)
			continue
		}
		if rec.Key != key || (rec.Result != "admitted" && rec.Result != "duplicate") {
			f.add("event %s (%s): verdict %s for %q (deliveries %d, error %q), want admitted or duplicate for %s",
				id, tag, rec.Result, rec.Key, rec.Deliveries, rec.Error, key)
		}
		switch a := fs.auditVerd[id]; {
		case len(a) != 1:
			f.add("event %s (%s): %d verdict records in the audit stream, want 1", id, tag, len(a))
		case a[0].Result != rec.Result:
			f.add("event %s (%s): audit says %s, the event verdict %s", id, tag, a[0].Result, rec.Result)
		}
	}
	for id := range fs.auditVerd {
		if _, ok := fs.eventTag[id]; !ok {
			f.add("audit verdict for event %s, which is not in the stream", id)
		}
	}
	for _, tag := range tags {
		key := stressModule + "@" + tag
		if n := len(fs.admitted[key]); n != 1 {
			var results []string
			for _, id := range fs.events[tag] {
				results = append(results, id+"="+fs.verdicts[id].Result)
			}
			f.add("%s: %d \"admitted\" verdicts in the audit stream (%v), want exactly 1; its events: %v", key, n, fs.admitted[key], results)
		}
	}
}

// waitVerdicts waits until every tag has a verdict by key and the queue is
// empty, and returns when the last verdict came in.
func waitVerdicts(ctx context.Context, t *testing.T, qc *queue.Conn, tags []string, timeout time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	missing := slices.Clone(tags)
	var idleSince time.Time // when the queue was last seen empty with verdicts missing
	for {
		var still []string
		for _, tag := range missing {
			err := natsRetry(t, "verdict of "+tag, func() error {
				_, err := qc.Verdict(ctx, stressModule+"@"+tag)
				return err
			})
			if errors.Is(err, queue.ErrNotFound) {
				still = append(still, tag)
			}
		}
		missing = still
		var d queue.Depth
		natsRetry(t, "queue depth", func() (err error) {
			d, err = qc.QueueDepth(ctx)
			return err
		})
		switch {
		case d.Pending != 0 || d.InFlight != 0:
			idleSince = time.Time{}
		case len(missing) == 0:
			return time.Since(t0)
		case idleSince.IsZero():
			idleSince = time.Now()
		case time.Since(idleSince) > 15*time.Second:
			// Nothing left to do: the missing events are lost.
			t.Errorf("the queue is empty, but %d tags have no verdict: %v", len(missing), missing)
			return time.Since(t0)
		}
		if time.Since(t0) > timeout {
			d, _ := qc.QueueDepth(ctx)
			t.Errorf("after %v: %d tags without a verdict (%v), queue %+v", timeout, len(missing), missing, d)
			return time.Since(t0)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// natsRetry calls fn until it returns nil or queue.ErrNotFound, and
// returns that. Other errors (a NATS request timing out) are logged and
// retried for up to a minute, then fail the test.
func natsRetry(t *testing.T, what string, fn func() error) error {
	t.Helper()
	t0 := time.Now()
	for {
		err := fn()
		if err == nil || errors.Is(err, queue.ErrNotFound) {
			if time.Since(t0) > time.Second {
				t.Logf("%s: NATS answered again after %v", what, time.Since(t0).Round(time.Millisecond))
			}
			return err
		}
		if time.Since(t0) > time.Minute {
			t.Fatalf("%s: %v (for %v)", what, err, time.Since(t0).Round(time.Second))
		}
		t.Logf("%s: %v; retrying", what, err)
		time.Sleep(500 * time.Millisecond)
	}
}

// checkAfterStop runs `modgate verify` on the stopped instance and checks
// that the checksum log holds exactly one record per version.
func checkAfterStop(t *testing.T, h *stressHost, in *stressInstance, versions []string, f *findings) {
	t.Helper()
	cmd := exec.Command(h.bin, "verify", "--config", in.cfgFile)
	cmd.Dir = in.dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": 0 findings") || !strings.Contains(string(out), "signatures checked (0 unsigned)") {
		f.add("modgate verify: %v\n%s", err, out)
	} else {
		t.Logf("modgate verify: %s", strings.TrimSpace(string(out)))
	}
	signer, verifier, _, err := sumlog.ParseKey(in.skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := sumlog.Open(filepath.Join(in.dir, "data", "sumdb"), signer, verifier)
	if err != nil {
		t.Fatalf("opening the checksum log: %v", err)
	}
	defer l.Close()
	if n := l.Size(); n != int64(len(versions)) {
		f.add("checksum log: %d records for %d versions", n, len(versions))
	}
	ids := map[int64]string{}
	for _, v := range versions {
		id, _, err := l.Lookup(context.Background(), module.Version{Path: stressModule, Version: v})
		if err != nil {
			f.add("checksum log: %s: %v", v, err)
			continue
		}
		if other, ok := ids[id]; ok {
			f.add("checksum log: record %d for %s and %s", id, v, other)
		}
		ids[id] = v
	}
}

// replayRecords says what the webhook replay store (modgate_deliveries)
// holds for a GitHub delivery: its id and its signed body, each with the
// time it was recorded.
func replayRecords(qc *queue.Conn, id string, body []byte) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := qc.JetStream().KeyValue(ctx, queue.DeliveriesBucket)
	if err != nil {
		return fmt.Sprintf("replay store: %v", err)
	}
	sum := sha256.Sum256(body)
	var out []string
	for _, k := range []string{id, "sha256." + hex.EncodeToString(sum[:])} {
		e, err := kv.Get(ctx, queue.EscapeKey(string(webhook.GitHub))+"."+queue.EscapeKey(k))
		if err != nil {
			out = append(out, fmt.Sprintf("%.20s: %v", k, err))
			continue
		}
		out = append(out, fmt.Sprintf("%.20s recorded %s", k, e.Value()))
	}
	return "replay store: " + strings.Join(out, ", ")
}

// storeList reads the final @v/list.
func storeList(in *stressInstance, f *findings) []string {
	data, err := os.ReadFile(filepath.Join(in.store, filepath.FromSlash(stressModule), "@v", "list"))
	if err != nil {
		f.add("final @v/list: %v", err)
	}
	return strings.Fields(string(data))
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// ---------------------------------------------------------------------------
// TestServeCrash.

func TestServeCrash(t *testing.T) {
	if os.Getenv("MODGATE_STRESS") == "" {
		t.Skip("kill -9 crash test of modgate serve (about 80 s): run with MODGATE_STRESS=1 or `make stress`")
	}
	if testing.Short() {
		t.Skip("crash test: about 100 s")
	}
	const tags = 60
	runs := envInt("MODGATE_STRESS_RUNS", 3)
	seed0 := envInt("MODGATE_STRESS_SEED", 1)
	h := newStressHost(t, tags)
	var (
		mu    sync.Mutex
		total crashStats
	)
	t0 := time.Now()
	// The runs are parallel subtests (at most -test.parallel at once,
	// GOMAXPROCS by default): each spends much of its time waiting for
	// AckWait (30 s) to hand back the jobs a kill interrupted.
	t.Run("runs", func(t *testing.T) {
		for i := range runs {
			seed := uint64(seed0 + i)
			t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
				t.Parallel()
				s := crashRun(t, h, seed)
				mu.Lock()
				total.add(s)
				mu.Unlock()
			})
		}
	})
	t.Logf("crash: %d runs (seeds %d…%d), %d kills (%d during recovery), %d deliveries (%d redelivered, %d of them answered duplicate), %d events, %d admissions, %d store polls, %d proxy polls, in %v",
		runs, seed0, seed0+runs-1, total.kills, total.earlyKills, total.deliveries, total.redelivered, total.cutDuplicate, total.events, total.admitted, total.polls, total.httpPolls, time.Since(t0).Round(time.Second))
}

type crashStats struct {
	kills, earlyKills, deliveries, redelivered, events, admitted int
	cutDuplicate                                                 int // redelivered after a cut request, answered duplicate
	polls, httpPolls                                             int64
}

func (s *crashStats) add(o crashStats) {
	s.kills += o.kills
	s.earlyKills += o.earlyKills
	s.deliveries += o.deliveries
	s.redelivered += o.redelivered
	s.cutDuplicate += o.cutDuplicate
	s.events += o.events
	s.admitted += o.admitted
	s.polls += o.polls
	s.httpPolls += o.httpPolls
}

// delivery is what became of one tag's delivery in the crash test.
type delivery struct {
	answers  []hookAnswer
	errors   int      // transport errors and 503s before the final answer
	failures []string // when and why the first of them happened
	final    hookAnswer
	finished bool
}

func crashRun(t *testing.T, h *stressHost, seed uint64) (stats crashStats) {
	t0 := time.Now()
	rng := rand.New(rand.NewPCG(seed, 0x6d6f6467617465))
	in := h.newInstance(t)
	srv := newServeProc(t, h, in)
	srv.start()
	srv.waitReady(60 * time.Second)

	f := &findings{}
	ctx, stopPolling := context.WithCancel(context.Background())
	defer stopPolling() // and stops the senders if the run ends early
	sw := newStoreWatch(in.store, f)
	hw := newHTTPWatch(in.base(), in.store, f)
	var pollers sync.WaitGroup
	pollers.Go(func() { sw.run(ctx) })
	pollers.Go(func() { hw.run(ctx) })

	// Every tag is delivered once, in a random order, redelivered after a
	// failure as a git host does: a third of them in a burst of concurrent
	// deliveries that the first kill lands in (to catch requests between
	// their replay record and their enqueue), the rest by two senders at a
	// random pace while the other kills land, mostly in the workers.
	order := rng.Perm(len(h.tags))
	burst, paced := order[:len(order)/3], order[len(order)/3:]
	results := make([]delivery, len(h.tags))
	client := &http.Client{Timeout: 15 * time.Second}
	send := func(i int, srng *rand.Rand) {
		tag := h.tags[i]
		body, id := h.pushBody(tag, "releng", ""), fmt.Sprintf("crash-%d-%s", seed, idPart(tag))
		d := &results[i]
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) {
			if ctx.Err() != nil {
				return // the run ended early
			}
			a, err := deliver(ctx, client, in.base(), body, id, []byte(stressSecret))
			if err == nil {
				d.answers = append(d.answers, a)
			}
			if err == nil && (a.Status == 202 || a.Status == 200) {
				d.final, d.finished = a, true
				return
			}
			if err == nil && a.Status != 503 {
				f.add("delivery %s (%s): %d %s %s", id, tag, a.Status, a.Result, a.Reason)
				return
			}
			d.errors++
			if len(d.failures) < 2 {
				why := fmt.Sprint(err)
				if err == nil {
					why = fmt.Sprintf("%d %s", a.Status, a.Reason)
				}
				d.failures = append(d.failures, time.Now().Format("15:04:05.000")+" "+why)
			}
			time.Sleep(time.Duration(20+srng.IntN(200)) * time.Millisecond)
		}
		f.add("delivery %s (%s) never answered 202 or 200: %+v", id, tag, d.answers)
	}
	work := make(chan int, len(paced))
	for _, i := range paced {
		work <- i
	}
	close(work)
	var senders sync.WaitGroup
	for s := range 2 {
		srng := rand.New(rand.NewPCG(seed, uint64(s)))
		senders.Go(func() {
			for i := range work {
				send(i, srng)
				time.Sleep(time.Duration(srng.IntN(900)) * time.Millisecond)
			}
		})
	}

	// Kill the server 3 to 5 times at random points, the first time in the
	// burst, sometimes again while it recovers, restarting it each time on
	// the same data.
	kills := 3 + rng.IntN(3)
	var restarts []time.Duration
	for k := range kills {
		time.Sleep(500*time.Millisecond + time.Duration(rng.IntN(2500))*time.Millisecond)
		if k == 0 {
			for j, i := range burst {
				srng := rand.New(rand.NewPCG(seed, 100+uint64(j)))
				senders.Go(func() { send(i, srng) })
			}
			time.Sleep(time.Duration(1+rng.IntN(40)) * time.Millisecond)
		}
		srv.kill()
		stats.kills++
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		srv.start()
		if k < kills-1 && rng.IntN(4) == 0 {
			time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
			srv.kill()
			stats.kills++
			stats.earlyKills++
			srv.start()
		}
		restarts = append(restarts, srv.waitReady(60*time.Second))
	}
	senders.Wait()
	tDelivered := time.Since(t0)

	qc, err := queue.Start(context.Background(), queue.Config{URL: in.natsURL()}, nil)
	if err != nil {
		t.Fatalf("connecting to NATS: %v", err)
	}
	wait := waitVerdicts(context.Background(), t, qc, h.tags, 150*time.Second)
	stopPolling()
	pollers.Wait()

	fs := readFinal(context.Background(), t, qc)
	fs.checkEvents(f, h.tags)
	for _, tag := range h.tags {
		if len(fs.admitted[stressModule+"@"+tag]) == 1 {
			continue
		}
		// When it was published, and what the serving processes logged
		// about the tag's events.
		if seen, ok := sw.seen[tag]; ok {
			t.Logf("%s: first seen in @v/list at %s, while %s ran", tag, seen.Format("15:04:05.000"), srv.at(seen))
		}
		for _, id := range fs.events[tag] {
			for _, l := range srv.logLines(id) {
				if len(l) > 700 {
					l = l[:700] + "…"
				}
				t.Logf("%s: %s", tag, l)
			}
		}
	}
	for i, tag := range h.tags {
		d := results[i]
		stats.deliveries++
		if d.errors > 0 {
			stats.redelivered++
			if d.final.Result == "duplicate" {
				stats.cutDuplicate++
			}
		}
		ids := fs.events[tag]
		if len(ids) != 1 {
			f.add("%s: %d events in the stream (%v), want 1; delivery answers %+v after %d failures (first: %q); %s",
				tag, len(ids), ids, d.answers, d.errors, d.failures, replayRecords(qc, fmt.Sprintf("crash-%d-%s", seed, idPart(tag)), h.pushBody(tag, "releng", "")))
			for _, l := range srv.logLines(fmt.Sprintf("crash-%d-%s", seed, idPart(tag))) {
				t.Logf("%s: %.700s", tag, l)
			}
			continue
		}
		if d.final.Status == 202 && d.final.EventID != ids[0] {
			f.add("%s: 202 with event %s, but the stream has %s", tag, d.final.EventID, ids[0])
		}
	}
	stats.events = len(fs.eventTag)
	for _, ids := range fs.admitted {
		stats.admitted += len(ids)
	}
	list := storeList(in, f)
	if want := slices.Sorted(slices.Values(h.tags)); !slices.Equal(slices.Sorted(slices.Values(list)), want) {
		f.add("final @v/list %v, want every tag", list)
	}
	if sw.max.Load() != int64(len(h.tags)) || len(hw.order) != len(h.tags) {
		f.add("pollers saw %d versions in the store and checked %d over HTTP, want %d", sw.max.Load(), len(hw.order), len(h.tags))
	}
	qc.Close()
	if err := srv.stop(60 * time.Second); err != nil {
		f.add("%v", err)
	}
	checkAfterStop(t, h, in, h.tags, f)

	stats.polls, stats.httpPolls = sw.lists.Load(), hw.ok.Load()
	t.Logf("seed %d: %d kills (%d during recovery; ready again after %v), %d deliveries (%d redelivered, %d of them answered duplicate) sent in %v; queue drained %v later; %d events, %d admitted; pollers: %d store lists, %d proxy lists, %d transport errors; run %v",
		seed, stats.kills, stats.earlyKills, roundAll(restarts), stats.deliveries, stats.redelivered, stats.cutDuplicate, tDelivered.Round(time.Millisecond),
		wait.Round(time.Millisecond), stats.events, stats.admitted, stats.polls, stats.httpPolls, hw.down.Load(), time.Since(t0).Round(time.Millisecond))
	srv.logProblems(t, f)
	f.report(t)
	return stats
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// ---------------------------------------------------------------------------
// TestServeLoad.

// loadDelivery is one of the 1,000 deliveries of the load test.
type loadDelivery struct {
	tag    string
	id     string
	body   []byte
	bad    bool   // signed with another secret
	group  string // deliveries with the same body: at most one is accepted
	commit bool   // names the commit: the second event of the tag
	answer hookAnswer
	err    error
	tries  int
}

func TestServeLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: about 35 s")
	}
	const (
		tags        = 100
		perTag      = 6   // distinct valid deliveries per tag
		redelivered = 300 // exact redeliveries (30%)
		bad         = 100 // bad signatures (10%)
		senders     = 32
	)
	h := newStressHost(t, tags)
	in := h.newInstance(t)
	srv := newServeProc(t, h, in)
	srv.start()
	srv.waitReady(60 * time.Second)
	rng := rand.New(rand.NewPCG(uint64(envInt("MODGATE_STRESS_SEED", 1)), 0x6c6f6164))

	// 600 distinct valid deliveries: per tag, the canonical body under two
	// delivery ids, two bodies that differ in sender only, and two that also
	// name the commit.
	var ds []*loadDelivery
	for _, tag := range h.tags {
		for k := range perTag {
			d := &loadDelivery{tag: tag, id: fmt.Sprintf("load-%s-%d", idPart(tag), k)}
			switch k {
			case 0, 1:
				d.body, d.group = h.pushBody(tag, "releng", ""), tag+"/canonical"
			case 2, 3:
				d.body, d.group = h.pushBody(tag, fmt.Sprintf("ci-bot-%d", k), ""), fmt.Sprintf("%s/sender-%d", tag, k)
			default:
				d.body, d.group, d.commit = h.pushBody(tag, fmt.Sprintf("releng-%d", k), h.commits[tag]), fmt.Sprintf("%s/commit-%d", tag, k), true
			}
			ds = append(ds, d)
		}
	}
	valid := slices.Clone(ds)
	for range redelivered {
		o := valid[rng.IntN(len(valid))]
		ds = append(ds, &loadDelivery{tag: o.tag, id: o.id, body: o.body, group: o.group, commit: o.commit})
	}
	for i := range bad {
		o := valid[rng.IntN(len(valid))]
		id := fmt.Sprintf("bad-%d", i)
		if i%2 == 0 {
			id = o.id // a forged delivery under a real delivery id
		}
		ds = append(ds, &loadDelivery{tag: o.tag, id: id, body: o.body, bad: true})
	}
	rng.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })

	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	work := make(chan *loadDelivery)
	var wg sync.WaitGroup
	var retried503 atomic.Int64
	t0 := time.Now()
	for range senders {
		wg.Go(func() {
			for d := range work {
				secret := []byte(stressSecret)
				if d.bad {
					secret = []byte("forged-secret-forged-secret")
				}
				for d.tries < 5 {
					d.tries++
					d.answer, d.err = deliver(context.Background(), client, in.base(), d.body, d.id, secret)
					if d.err != nil || d.answer.Status != 503 {
						break
					}
					retried503.Add(1) // the git host would redeliver
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
	for _, d := range ds {
		work <- d
	}
	close(work)
	wg.Wait()
	sendTime := time.Since(t0)

	f := &findings{}
	statuses := map[int]int{}
	accepted := map[string][]*loadDelivery{} // group -> deliveries answered 202
	eventOf := map[string]map[string]bool{}  // tag/commit? -> event ids answered
	for _, d := range ds {
		if d.err != nil {
			f.add("delivery %s (%s): %v", d.id, d.tag, d.err)
			continue
		}
		statuses[d.answer.Status]++
		switch {
		case d.bad:
			if d.answer.Status != 401 {
				f.add("forged delivery %s (%s): %d %s, want 401", d.id, d.tag, d.answer.Status, d.answer.Result)
			}
		case d.answer.Status == 202:
			accepted[d.group] = append(accepted[d.group], d)
			k := fmt.Sprintf("%s commit=%v", d.tag, d.commit)
			if eventOf[k] == nil {
				eventOf[k] = map[string]bool{}
			}
			eventOf[k][d.answer.EventID] = true
		case d.answer.Status == 200 && d.answer.Result == "duplicate":
		default:
			f.add("delivery %s (%s): %d %s %s", d.id, d.tag, d.answer.Status, d.answer.Result, d.answer.Reason)
		}
	}
	for _, d := range valid {
		if n := len(accepted[d.group]); n != 1 {
			f.add("%d deliveries of body %s accepted, want exactly 1", n, d.group)
		}
	}
	for _, tag := range h.tags {
		for _, commit := range []bool{false, true} {
			if ids := eventOf[fmt.Sprintf("%s commit=%v", tag, commit)]; len(ids) != 1 {
				f.add("%s (commit named: %v): accepted under event ids %v, want one", tag, commit, slices.Collect(maps.Keys(ids)))
			}
		}
	}

	qc, err := queue.Start(context.Background(), queue.Config{URL: in.natsURL()}, nil)
	if err != nil {
		t.Fatalf("connecting to NATS: %v", err)
	}
	defer qc.Close()
	waitVerdicts(context.Background(), t, qc, h.tags, 180*time.Second)
	allIn := time.Since(t0)
	fs := readFinal(context.Background(), t, qc)
	fs.checkEvents(f, h.tags)
	results := map[string]int{}
	for _, tag := range h.tags {
		if n := len(fs.events[tag]); n != 2 {
			f.add("%s: %d events in the stream, want 2 (one without the commit, one with)", tag, n)
		}
		for _, id := range fs.events[tag] {
			results[fs.verdicts[id].Result]++
		}
	}
	for k, ids := range eventOf {
		for id := range ids {
			if _, ok := fs.eventTag[id]; !ok {
				f.add("%s: 202 with event %s, which is not in the stream", k, id)
			}
		}
	}
	// One audit record per request.
	audited := map[int]int{}
	for _, w := range fs.webhookAud {
		audited[w.Status]++
	}
	for status, n := range statuses {
		if audited[status] != n {
			f.add("%d answers %d, but %d audit records with that status", n, status, audited[status])
		}
	}
	if list := storeList(in, f); len(list) != tags {
		f.add("@v/list has %d versions, want %d", len(list), tags)
	}
	var durations []float64
	for _, l := range srv.logLines(`"msg":"admission"`) {
		var rec struct {
			Result     string  `json:"result"`
			DurationMS float64 `json:"duration_ms"`
		}
		if i := strings.Index(l, "{"); i >= 0 && json.Unmarshal([]byte(l[i:]), &rec) == nil {
			durations = append(durations, rec.DurationMS)
		}
	}
	slices.Sort(durations)
	qc.Close()
	if err := srv.stop(60 * time.Second); err != nil {
		f.add("%v", err)
	}
	checkAfterStop(t, h, in, h.tags, f)

	t.Logf("load: %d deliveries (%d valid distinct, %d exact redeliveries, %d forged) by %d senders in %v: %.0f deliveries/s, %.0f accepted (202)/s; answers %v; 503s retried %d",
		len(ds), len(valid), redelivered, bad, senders, sendTime.Round(time.Millisecond), float64(len(ds))/sendTime.Seconds(),
		float64(statuses[202])/sendTime.Seconds(), statuses, retried503.Load())
	t.Logf("load: %d events (%v), every verdict in %v after the first delivery: %.2f events/s, %.2f admissions/s; pipeline duration per event p50 %.0f ms, p90 %.0f ms, max %.0f ms",
		len(fs.eventTag), results, allIn.Round(time.Millisecond), float64(len(fs.eventTag))/allIn.Seconds(), float64(tags)/allIn.Seconds(),
		quantile(durations, 0.5), quantile(durations, 0.9), quantile(durations, 1))
	srv.logProblems(t, f)
	f.report(t)
}

// idPart is tag as a part of a delivery id: letters, digits, '-' and '_'.
func idPart(tag string) string { return strings.ReplaceAll(tag, ".", "_") }

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}
