package integrity

import (
	"context"
	"fmt"
	"maps"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/sbom"
	"github.com/modgate/modgate/sbom/sbomtest"
	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/store/storetest"
	"github.com/modgate/modgate/sumlog"
)

// signedWorld is a world whose versions carry a signed SBOM and
// verification summary, as admissions publish them.
type signedWorld struct {
	*world
	signer *sbom.Signer
	// legacy publishes summaries that do not name the admission record,
	// as modgate's did before it named it.
	legacy bool
}

func newSignedWorld(t testing.TB) *signedWorld {
	t.Helper()
	skey, _, err := sumlog.GenerateKey("sum.corp.example")
	if err != nil {
		t.Fatal(err)
	}
	s := sbomtest.NewSigner(t)
	w := &signedWorld{world: newWorld(t, skey), signer: s}
	w.opts.PublicKey = s.PublicKeyPEM()
	w.opts.Memo = NewMemo()
	return w
}

func (w *signedWorld) publish(t testing.TB, m module.Version, content string) {
	t.Helper()
	v := storetest.Version(t, m, map[string]string{
		"x.go":   "package x\n// " + content + "\n",
		"go.sum": "golang.org/x/mod v0.20.0/go.mod h1:hTbmBsO62+eylJbnUtE2MGJUyE7QWk4xUqPFrRgJ+7c=\n",
	})
	zipSHA, err := sbom.SHA256File(v.ZipFile)
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte(fmt.Sprintf(`{"spdxVersion":"SPDX-2.3","name":%q}`, m))
	sig, bundle, err := w.signer.SignBlob(doc)
	if err != nil {
		t.Fatal(err)
	}
	record := []byte(fmt.Sprintf(`{"module":%q,"version":%q,"input":{"licenses":["MIT"]}}`, m.Path, m.Version))
	sum := sbom.Summary{Module: m.Path, Version: m.Version, ZipSHA256: zipSHA, ZipHash: v.ZipHash,
		PolicyURI: "https://modgate.example/policies", Verified: time.Now(), VerifierID: "https://modgate.example/verifier"}
	if w.legacy {
		sum.Inputs = []sbom.ResourceDescriptor{Input(m, store.DocSPDX, doc)}
	} else {
		if sum.Inputs, err = AdmissionInputs(m, map[string][]byte{
			store.DocSPDX: doc, store.DocVerdict: record, ".info": v.Info, store.DocSPDXBundle: bundle,
		}); err != nil {
			t.Fatal(err)
		}
	}
	env, err := w.signer.SignSummary(sum)
	if err != nil {
		t.Fatal(err)
	}
	v.Docs = map[string][]byte{store.DocSPDX: doc, store.DocSPDXSig: sig, store.DocSPDXBundle: bundle, store.DocInToto: env, store.DocVerdict: record}
	text := fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", m.Path, m.Version, v.ZipHash, m.Path, m.Version, storetest.ModHash(t, v.Mod))
	v.Record = func(ctx context.Context) error { _, err := w.log.Append(ctx, m, []byte(text)); return err }
	if _, err := w.store.Publish(context.Background(), v); err != nil {
		t.Fatal(err)
	}
}

// check proves m against the log's current head with opts, through a
// countingStore, which it returns.
func (w *signedWorld) check(t *testing.T, opts Options, m module.Version) (*Version, *countingStore) {
	t.Helper()
	ctx := context.Background()
	cs := &countingStore{Store: w.store, opened: map[string]int{}}
	head, err := VerifiedHead(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	v, err := CheckVersion(ctx, cs, opts, head, m)
	if err != nil {
		t.Fatal(err)
	}
	return v, cs
}

// countingStore counts the files opened or read, by suffix.
type countingStore struct {
	Store
	mu     sync.Mutex
	opened map[string]int
}

func (c *countingStore) OpenFile(ctx context.Context, m module.Version, suffix string) (*os.File, error) {
	c.count(suffix)
	return c.Store.OpenFile(ctx, m, suffix)
}

func (c *countingStore) ReadFile(ctx context.Context, m module.Version, suffix string, limit int64, buf []byte) ([]byte, error) {
	c.count(suffix)
	return c.Store.ReadFile(ctx, m, suffix, limit, buf)
}

func (c *countingStore) count(suffix string) {
	c.mu.Lock()
	c.opened[suffix]++
	c.mu.Unlock()
}

// replaceFile overwrites a stored file of m (published files are
// read-only), as rot or an intruder would.
func replaceFile(t *testing.T, st *store.Dir, m module.Version, suffix string, data []byte) {
	t.Helper()
	f, err := st.OpenFile(context.Background(), m, suffix)
	if err != nil {
		t.Fatal(err)
	}
	name := f.Name()
	f.Close()
	if err := os.Chmod(name, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readStored(t *testing.T, st *store.Dir, m module.Version, suffix string) []byte {
	t.Helper()
	f, err := st.OpenFile(context.Background(), m, suffix)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestQuick: a version whose summary binds its zip's SHA-256 to the log's
// h1: is proven with one read of the zip and nothing extracted but its
// go.sum; everything that no longer holds is handed to the long way, which
// reports it exactly as a --deep run would.
func TestQuick(t *testing.T) {
	ctx := context.Background()
	w := newSignedWorld(t)
	good := module.Version{Path: "corp.example/m", Version: "v1.0.0"}
	other := module.Version{Path: "corp.example/m", Version: "v1.0.1"}
	w.publish(t, good, "good")
	w.publish(t, other, "other")

	quick, cs := w.check(t, w.opts, good)
	if len(quick.Findings) != 0 || quick.Unsigned || !quick.RecordBound || len(quick.Record) == 0 {
		t.Fatalf("good version: %+v", quick)
	}
	if cs.opened[".zip"] != 1 {
		t.Errorf("the zip was opened %d times, want once (the short way): %v", cs.opened[".zip"], cs.opened)
	}
	// What the benchmarks hash for their raw baseline is what the short way
	// reads, once each, besides .ziphash (compared as text, not hashed).
	want := map[string]int{".ziphash": 1}
	for _, s := range HashedSuffixes() {
		want[s] = 1
	}
	for s := range want {
		if ReadLimit(s) <= 0 {
			t.Errorf("%s is read with no limit", s)
		}
	}
	if !maps.Equal(cs.opened, want) {
		t.Errorf("the short way read %v, want HashedSuffixes and .ziphash once each: %v", cs.opened, want)
	}
	deepOpts := w.opts
	deepOpts.ZipBytes = true
	deep, _ := w.check(t, deepOpts, good)
	if len(deep.Findings) != 0 {
		t.Fatalf("good version, deep: %v", deep.Findings)
	}
	// Both ways know the same things of a good version.
	if quick.ZipHash != deep.ZipHash || quick.ModHash != deep.ModHash || quick.ZipSHA256 != deep.ZipSHA256 ||
		quick.ZipSize != deep.ZipSize || string(quick.GoMod) != string(deep.GoMod) || string(quick.GoSum) != string(deep.GoSum) ||
		!quick.GoSumKnown || quick.SBOMSHA256 != deep.SBOMSHA256 || !strings.HasPrefix(string(quick.GoSum), "golang.org/x/mod") ||
		string(quick.Record) != string(deep.Record) || !deep.RecordBound {
		t.Errorf("short way %+v\nlong way %+v", quick, deep)
	}

	otherZip := storetest.Zip(t, good, map[string]string{"go.mod": "module corp.example/m\n", "x.go": "package x\n// evil\n"})
	evil, err := os.ReadFile(otherZip)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		suffix string
		data   func() []byte
		checks string // the findings' checks, sorted
		deep   string // when the long way (ZipBytes) finds otherwise
	}{
		{"zip replaced by another valid zip", ".zip", func() []byte { return evil }, "log-record,summary,zip", ""},
		{"zip of another version", ".zip", func() []byte { return readStored(t, w.store, other, ".zip") }, "log-record,summary,zip", "zip"},
		{"summary of another version", ".intoto.jsonl", func() []byte { return readStored(t, w.store, other, ".intoto.jsonl") }, "summary", ""},
		{"go.mod edited", ".mod", func() []byte { return []byte("module corp.example/m\n\ngo 1.21\n") }, "log-record", ""},
		{"ziphash edited", ".ziphash", func() []byte { return []byte("h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n") }, "zip", ""},
		{"SBOM edited", ".spdx.json", func() []byte { return []byte(`{"spdxVersion":"SPDX-2.3"}`) }, "sbom-signature", ""},
		{"admission record edited", store.DocVerdict, func() []byte {
			return []byte(`{"module":"corp.example/m","version":"v1.0.0","input":{"licenses":["Apache-2.0"]}}`)
		}, "record", ""},
		{"admission record of another version", store.DocVerdict, func() []byte { return readStored(t, w.store, other, store.DocVerdict) }, "record", ""},
		{".info edited", ".info", func() []byte { return []byte(`{"Version":"v1.0.0","Time":"2000-01-01T00:00:00Z"}`) }, "info", ""},
		{"SBOM bundle edited", store.DocSPDXBundle, func() []byte { return []byte(`{}`) }, "sbom-signature", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saved := readStored(t, w.store, good, tc.suffix)
			replaceFile(t, w.store, good, tc.suffix, tc.data())
			defer replaceFile(t, w.store, good, tc.suffix, saved)
			for _, opts := range []Options{w.opts, deepOpts} {
				v, _ := w.check(t, opts, good)
				var got []string
				for _, f := range v.Findings {
					got = append(got, f.Check)
				}
				sort.Strings(got)
				want := tc.checks
				if opts.ZipBytes && tc.deep != "" {
					want = tc.deep
				}
				if strings.Join(got, ",") != want {
					t.Errorf("ZipBytes=%v: findings %v, want checks %s", opts.ZipBytes, v.Findings, want)
				}
			}
		})
	}
	if v, _ := w.check(t, w.opts, good); len(v.Findings) != 0 || len(v.Bound) != len(boundFiles) {
		t.Errorf("restored: %v, bound %v", v.Findings, v.Bound)
	}

	// A re-verification statement naming the same zip (signed by modgate,
	// about a run), put in place of the admission summary, which it would
	// downgrade to one that names no record.
	t.Run("summary replaced by a re-verification statement", func(t *testing.T) {
		batch, err := w.signer.SignSummaries([]sbom.Summary{{Module: good.Path, Version: good.Version, ZipSHA256: quick.ZipSHA256,
			ZipHash: quick.ZipHash, PolicyURI: "https://modgate.example/policies", Verified: time.Now(),
			VerifierID: "https://modgate.example/verifier"}}, "https://modgate.example/reverify/r1")
		if err != nil {
			t.Fatal(err)
		}
		saved := readStored(t, w.store, good, store.DocInToto)
		replaceFile(t, w.store, good, store.DocInToto, batch)
		defer replaceFile(t, w.store, good, store.DocInToto, saved)
		for _, opts := range []Options{w.opts, deepOpts} {
			v, _ := w.check(t, opts, good)
			if len(v.Findings) != 1 || v.Findings[0].Check != "summary" || !strings.Contains(v.Findings[0].Reason, "not the admission summary") {
				t.Errorf("ZipBytes=%v: findings %v, want the summary refused", opts.ZipBytes, v.Findings)
			}
		}
	})

	// A file the summary names, removed.
	t.Run("SBOM bundle removed", func(t *testing.T) {
		f, err := w.store.OpenFile(ctx, good, store.DocSPDXBundle)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		saved := readStored(t, w.store, good, store.DocSPDXBundle)
		if err := os.Remove(f.Name()); err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(f.Name(), saved, 0o444)
		for _, opts := range []Options{w.opts, deepOpts} {
			v, _ := w.check(t, opts, good)
			if len(v.Findings) != 1 || v.Findings[0].Check != "sbom-signature" || !strings.Contains(v.Findings[0].Reason, "missing") {
				t.Errorf("ZipBytes=%v: findings %v, want the bundle missing", opts.ZipBytes, v.Findings)
			}
		}
	})

	// A summary signed before modgate named the record: no finding, the
	// record is read but not bound, and it is proven the long way.
	w.legacy = true
	old := module.Version{Path: "corp.example/m", Version: "v0.9.0"}
	w.publish(t, old, "old")
	for _, opts := range []Options{w.opts, deepOpts} {
		v, _ := w.check(t, opts, old)
		if len(v.Findings) != 0 || v.RecordBound || len(v.Record) == 0 || len(v.Bound) != 0 {
			t.Errorf("legacy summary, ZipBytes=%v: findings %v, record bound %v, record %q", opts.ZipBytes, v.Findings, v.RecordBound, v.Record)
		}
	}
}

// BenchmarkCheckVersion is one signed version's re-verification, warm (its
// signatures remembered), each way: the short way; the long way (every file
// of the zip hashed, as --deep and anything the short way refuses); and the
// long way of a version whose summary predates the bound files.
func BenchmarkCheckVersion(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		legacy, long bool
	}{{"short", false, false}, {"long", false, true}, {"legacy", true, false}} {
		b.Run(tc.name, func(b *testing.B) {
			w := newSignedWorld(b)
			w.legacy = tc.legacy
			ms := make([]module.Version, 20)
			for i := range ms {
				ms[i] = module.Version{Path: "corp.example/m", Version: fmt.Sprintf("v1.0.%d", i)}
				w.publish(b, ms[i], ms[i].Version)
			}
			opts := w.opts
			opts.ZipBytes = tc.long
			head, err := VerifiedHead(ctx, opts)
			if err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				v, err := CheckVersion(ctx, w.store, opts, head, ms[i%len(ms)])
				if err != nil || len(v.Findings) != 0 || v.RecordBound == tc.legacy {
					b.Fatalf("%+v %v", v, err)
				}
				i++
			}
		})
	}
}

// TestMemoEntries: the memo holds two entries a version (the SBOM's
// signature and the summary's), on either way, and a second run adds none.
func TestMemoEntries(t *testing.T) {
	ctx := context.Background()
	for _, legacy := range []bool{false, true} {
		w := newSignedWorld(t)
		w.legacy = legacy
		var ms []module.Version
		for i := range 3 {
			m := module.Version{Path: "corp.example/m", Version: fmt.Sprintf("v1.0.%d", i)}
			w.publish(t, m, m.Version)
			ms = append(ms, m)
		}
		head, err := VerifiedHead(ctx, w.opts)
		if err != nil {
			t.Fatal(err)
		}
		for run := 1; run <= 2; run++ {
			for _, m := range ms {
				v, err := CheckVersion(ctx, w.store, w.opts, head, m)
				if err != nil || len(v.Findings) != 0 || v.RecordBound == legacy {
					t.Fatalf("legacy %v, %s: %+v, %v", legacy, m, v, err)
				}
			}
			if got := w.opts.Memo.Len(); got != 2*len(ms) {
				t.Errorf("legacy %v, run %d: %d memo entries for %d versions, want %d", legacy, run, got, len(ms), 2*len(ms))
			}
		}
	}
}

// TestRotatedKey: after the signing key is rotated, versions signed with
// the old key fail with a reason that names the remedy, unless the old
// public key is among PreviousKeys; then they pass the short way, run
// after run, with the versions signed by the new key.
func TestRotatedKey(t *testing.T) {
	w := newSignedWorld(t)
	oldKey := w.signer.PublicKeyPEM()
	before := module.Version{Path: "corp.example/m", Version: "v1.0.0"}
	after := module.Version{Path: "corp.example/m", Version: "v1.1.0"}
	w.publish(t, before, "before")
	w.signer = sbomtest.NewSigner(t)
	w.publish(t, after, "after")
	w.opts.PublicKey = w.signer.PublicKeyPEM()

	v, _ := w.check(t, w.opts, before)
	var checks []string
	for _, f := range v.Findings {
		checks = append(checks, f.Check)
		if !strings.Contains(f.Reason, "signing.previous_public_keys") {
			t.Errorf("finding %s does not name the remedy", f)
		}
	}
	if strings.Join(checks, ",") != "sbom-signature,summary" {
		t.Errorf("old key forgotten: findings %v", v.Findings)
	}

	if err := w.signer.AddPrevious(oldKey); err != nil {
		t.Fatal(err)
	}
	w.opts.PreviousKeys = w.signer.PreviousKeys()
	for run := 1; run <= 2; run++ {
		for _, m := range []module.Version{before, after} {
			v, cs := w.check(t, w.opts, m)
			if len(v.Findings) != 0 || cs.opened[".zip"] != 1 {
				t.Errorf("run %d, %s: findings %v, zip opened %d times (want the short way, once)", run, m, v.Findings, cs.opened[".zip"])
			}
		}
		if got := w.opts.Memo.Len(); got != 4 {
			t.Errorf("run %d: %d memo entries, want 2 a version", run, got)
		}
	}
}
