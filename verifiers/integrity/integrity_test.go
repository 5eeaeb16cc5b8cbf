package integrity

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/store/storetest"
	"github.com/modgate/modgate/sumlog"
)

type world struct {
	store *store.Dir
	log   *sumlog.Log
	opts  Options
}

func newWorld(t testing.TB, skey string) *world {
	t.Helper()
	signer, verifier, _, err := sumlog.ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := sumlog.Open(filepath.Join(dir, "sumdb"), signer, verifier)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &world{store: st, log: l, opts: Options{Log: l, Verifier: verifier}}
}

// publish puts m in the store and, when logged, its record in the log.
func (w *world) publish(t testing.TB, m module.Version, content string, logged bool) {
	t.Helper()
	v := storetest.Version(t, m, map[string]string{"x.go": "package x\n// " + content + "\n"})
	if logged {
		text := fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", m.Path, m.Version, v.ZipHash, m.Path, m.Version, storetest.ModHash(t, v.Mod))
		v.Record = func(ctx context.Context) error { _, err := w.log.Append(ctx, m, []byte(text)); return err }
	}
	if _, err := w.store.Publish(context.Background(), v); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	skey, _, err := sumlog.GenerateKey("sum.corp.example")
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, skey)
	for i := range 3 {
		w.publish(t, module.Version{Path: "corp.example/m", Version: fmt.Sprintf("v1.0.%d", i)}, "v", true)
	}
	r, err := Check(ctx, w.store, w.opts)
	if err != nil || r.Versions != 3 || len(r.Findings) != 0 || r.TreeSize != 3 {
		t.Fatalf("clean store: %+v, %v", r, err)
	}
	head := r.Head

	// A version published without its record (a store that lost its log,
	// or files copied in by hand) cannot be verified by clients.
	w.publish(t, module.Version{Path: "corp.example/unlogged", Version: "v1.0.0"}, "u", false)
	w.opts.PreviousHead = head
	r, err = Check(ctx, w.store, w.opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 || r.Findings[0].Check != "log-record" || r.Findings[0].Module != "corp.example/unlogged" {
		t.Fatalf("findings: %v", r.Findings)
	}

	// A log with the same key but another history is a fork of the tree
	// the previous run saw.
	forked := newWorld(t, skey)
	for i := range 4 {
		forked.publish(t, module.Version{Path: "corp.example/m", Version: fmt.Sprintf("v1.0.%d", i)}, "other", true)
	}
	forked.opts.PreviousHead = head
	r, err = Check(ctx, forked.store, forked.opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 || r.Findings[0].Check != "consistency" || !strings.Contains(r.Findings[0].Reason, "log forked") {
		t.Fatalf("fork findings: %v", r.Findings)
	}

	// A log smaller than a head already seen has rolled back.
	small := newWorld(t, skey)
	small.publish(t, module.Version{Path: "corp.example/m", Version: "v1.0.0"}, "v", true)
	small.opts.PreviousHead = head
	r, err = Check(ctx, small.store, small.opts)
	if err != nil || len(r.Findings) != 1 || !strings.Contains(r.Findings[0].Reason, "rolled back") {
		t.Fatalf("rollback findings: %v, %v", r.Findings, err)
	}
}

// BenchmarkCheck re-verifies 200 small versions: hashing, records and
// inclusion proofs.
func BenchmarkCheck(b *testing.B) {
	skey, _, _ := sumlog.GenerateKey("sum.corp.example")
	signer, verifier, _, _ := sumlog.ParseKey(skey)
	dir := b.TempDir()
	st, _ := store.Open(filepath.Join(dir, "store"))
	l, err := sumlog.Open(filepath.Join(dir, "sumdb"), signer, verifier)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for i := range 200 {
		m := module.Version{Path: "corp.example/m", Version: fmt.Sprintf("v1.0.%d", i)}
		v := storetest.Version(b, m, map[string]string{"x.go": strings.Repeat("package x\n", 200)})
		text := fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", m.Path, m.Version, v.ZipHash, m.Path, m.Version, storetest.ModHash(b, v.Mod))
		v.Record = func(ctx context.Context) error { _, err := l.Append(ctx, m, []byte(text)); return err }
		if _, err := st.Publish(context.Background(), v); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		r, err := Check(context.Background(), st, Options{Log: l, Verifier: verifier})
		if err != nil || len(r.Findings) != 0 {
			b.Fatal(err, r.Findings)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*200), "ns/version")
}
