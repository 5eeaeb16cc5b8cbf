// Package integrity re-proves what modgate has published: every stored
// version's zip and go.mod still hash to the go.sum record in modgate's
// checksum log, that record is in the log's current tree (an inclusion
// proof), and the current tree extends every tree head seen before (a
// consistency proof). It is what `modgate verify` runs, and what a client's
// go command would conclude on its own, for every version at once.
package integrity

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	modzip "golang.org/x/mod/zip"
	"golang.org/x/sync/errgroup"

	"github.com/modgate/modgate/internal/gosum"
	"github.com/modgate/modgate/internal/memo"
	"github.com/modgate/modgate/sbom"
	"github.com/modgate/modgate/store"
)

// Store is the published store, read-only.
type Store interface {
	// Walk calls fn for every published version.
	Walk(ctx context.Context, fn func(module.Version) error) error
	// OpenFile opens one file (".zip", ".mod", ".ziphash") of a published
	// version.
	OpenFile(ctx context.Context, m module.Version, suffix string) (*os.File, error)
	// ReadFile reads one file of a published version whole, into buf when
	// it has the capacity; a file larger than limit is an error.
	ReadFile(ctx context.Context, m module.Version, suffix string, limit int64, buf []byte) ([]byte, error)
}

// Log is modgate's checksum log, read-only.
type Log interface {
	Lookup(ctx context.Context, m module.Version) (id int64, text []byte, err error)
	TreeHead(ctx context.Context) (tlog.Tree, []byte, error)
	ProveRecord(t, id int64) (tlog.RecordProof, error)
	ProveTree(t, n int64) (tlog.TreeProof, error)
}

// Finding is one thing that no longer holds.
type Finding struct {
	Module  string `json:"module"`
	Version string `json:"version"`
	Check   string `json:"check"` // "zip", "go.mod", "log-record", "inclusion", "consistency", "sbom-signature", "summary", "record", "info"
	Reason  string `json:"reason"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s@%s: %s: %s", f.Module, f.Version, f.Check, f.Reason)
}

// Report is the result of one run.
type Report struct {
	Versions   int        `json:"versions"`
	Bytes      int64      `json:"bytes"`              // zip bytes re-hashed
	Unsigned   int        `json:"unsigned,omitempty"` // versions without SBOM signature and summary
	TreeSize   int64      `json:"tree_size,omitempty"`
	TreeHash   string     `json:"tree_hash,omitempty"`
	Findings   []Finding  `json:"findings"`
	DurationMS float64    `json:"duration_ms"`
	Head       []byte     `json:"-"` // the signed head checked, to save for the next run
	mu         sync.Mutex `json:"-"`
}

func (r *Report) add(f Finding) {
	r.mu.Lock()
	r.Findings = append(r.Findings, f)
	r.mu.Unlock()
}

// Options configure a run.
type Options struct {
	// Log is nil when no checksum database is configured: then only the
	// stored hashes are re-checked.
	Log Log
	// Verifier checks the signed tree heads; required with Log.
	Verifier note.Verifier
	// PreviousHead is the signed tree head of the last run (nil on the
	// first): the current tree must extend it.
	PreviousHead []byte
	// Concurrency is the number of versions hashed at once; default NumCPU.
	Concurrency int
	// PublicKey is modgate's cosign public key (PEM): when set, every SBOM
	// signature and verification summary is checked too. Versions published
	// without them are counted as unsigned.
	PublicKey []byte
	// PreviousKeys are cosign public keys (PEM) modgate signed with before
	// PublicKey: SBOM signatures and summaries made with them still verify
	// after the signing key is rotated.
	PreviousKeys [][]byte
	// ZipBytes checks every zip the long way: zip.CheckZip, the h1: of its
	// files, and the SHA-256 of its bytes matched against the verification
	// summary (what cosign checks).
	//
	// Without it (and with Log and PublicKey), a version is first proven
	// the short way: one SHA-256 pass over the zip's bytes, which the signed
	// verification summary binds to the h1: in the log record (one subject
	// names the zip by both; modgate computed both from the same bytes
	// before signing). Nothing is extracted or inflated. Anything that does
	// not hold on the short way is checked again the long way, which names
	// what is wrong.
	ZipBytes bool
	// Memo, when set, remembers the signatures that verified, by the exact
	// bytes of key, document and signature, so that a later run over
	// unchanged documents skips the public-key operations (the documents
	// are still read and hashed).
	Memo *Memo
}

// Memo remembers signature verifications that succeeded (memo.Set).
type Memo = memo.Set

// NewMemo returns an empty memo for about a million signatures.
func NewMemo() *Memo {
	m := new(Memo)
	m.Max = 1 << 20
	return m
}

// Check verifies every published version. Findings are in the report; the
// error is for failures to run at all (an unreadable store, a log that
// cannot produce proofs).
func Check(ctx context.Context, st Store, opts Options) (*Report, error) {
	start := time.Now()
	r := &Report{}
	var tree tlog.Tree
	if opts.Log != nil {
		var err error
		if tree, r.Head, err = verifiedHead(ctx, opts); err != nil {
			return nil, err
		}
		r.TreeSize, r.TreeHash = tree.N, tree.Hash.String()
		if err := checkConsistency(opts, tree, r); err != nil {
			return nil, err
		}
	}
	n := opts.Concurrency
	if n <= 0 {
		n = runtime.NumCPU()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	err := st.Walk(gctx, func(m module.Version) error {
		r.mu.Lock()
		r.Versions++
		r.mu.Unlock()
		g.Go(func() error {
			_, err := checkVersion(gctx, st, opts, tree, m, r)
			return err
		})
		return nil
	})
	if gerr := g.Wait(); err == nil {
		err = gerr
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if a.Module != b.Module {
			return a.Module < b.Module
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Check < b.Check
	})
	r.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	return r, nil
}

// Head is the log's current tree, proven from its signed head, and the
// findings of its consistency with opts.PreviousHead: the once-per-run part
// of a check, for callers that check versions one at a time (CheckVersion).
type Head struct {
	Tree     tlog.Tree
	Signed   []byte
	Findings []Finding
}

// VerifiedHead reads and verifies the log's current signed head and proves
// it consistent with opts.PreviousHead. With no log it returns a zero Head.
func VerifiedHead(ctx context.Context, opts Options) (*Head, error) {
	h := new(Head)
	if opts.Log == nil {
		return h, nil
	}
	var err error
	if h.Tree, h.Signed, err = verifiedHead(ctx, opts); err != nil {
		return nil, err
	}
	r := &Report{}
	if err := checkConsistency(opts, h.Tree, r); err != nil {
		return nil, err
	}
	h.Findings = r.Findings
	return h, nil
}

// CheckVersion re-proves one published version against head (from
// VerifiedHead with the same opts): what Check does for each version. The
// error is for failures to run at all.
func CheckVersion(ctx context.Context, st Store, opts Options, head *Head, m module.Version) (*Version, error) {
	r := &Report{}
	v, err := checkVersion(ctx, st, opts, head.Tree, m, r)
	if err != nil {
		return nil, err
	}
	v.Findings = r.Findings
	v.Unsigned = r.Unsigned > 0
	return v, nil
}

// Version is what CheckVersion found about one version: the hashes it
// computed from the stored files (empty when they could not be computed)
// and what no longer holds.
type Version struct {
	ZipHash   string // h1: of the stored zip
	ModHash   string // h1: of the stored go.mod
	ZipSHA256 string // hex SHA-256 of the stored zip bytes; with Options.PublicKey only
	ZipSize   int64
	Unsigned  bool // no SBOM signature and summary to check
	Findings  []Finding
	// Read on the way, for callers that check more: the stored go.mod,
	// the go.sum at the root of the zip (nil if none, or if the zip was too
	// large to be read whole), and the SHA-256 of the SBOM (hex; "" when
	// not checked).
	GoMod      []byte
	GoSum      []byte
	GoSumKnown bool // GoSum was looked for
	// Short says the version was proven the short way (Options.ZipBytes),
	// from what Store.ReadFile gave and the log's record alone.
	Short      bool
	SBOMSHA256 string
	// Record is the version's admission record (store.DocVerdict), read
	// with Options.PublicKey; nil when absent or unreadable. RecordBound
	// says that the signed verification summary names it by its SHA-256
	// (summaries made before modgate named the record do not; a record
	// that differs from the one named is a "record" finding).
	Record      []byte
	RecordBound bool
	// Bound are the files of boundFiles that the summary names and that
	// still match it, as the summary names them.
	Bound []sbom.ResourceDescriptor
}

// MaxRecord bounds an admission record read.
const MaxRecord = 16 << 20

// boundFiles are the files of a version that its admission summary names
// among its inputs, by SHA-256, besides the SBOM (whose own signature
// covers it): the admission record, whose policy input the current
// policies are evaluated on and whose tag object is re-verified; the .info
// the go command is served; the SBOM's cosign bundle. check names the
// finding of one that changed.
var boundFiles = []struct {
	suffix, check, mediaType string
}{
	{store.DocVerdict, "record", "application/json"},
	{".info", "info", "application/json"},
	{store.DocSPDXBundle, "sbom-signature", "application/json"},
}

// HashedSuffixes are the files of a version that a shallow re-verification
// reads and hashes with SHA-256: the zip, go.mod, the SBOM and its
// signature, the admission summary, and the files the summary names
// (boundFiles). Benchmarks hash the same files for their raw baseline.
func HashedSuffixes() []string {
	s := []string{".zip", ".mod", store.DocSPDX, store.DocSPDXSig, store.DocInToto}
	for _, b := range boundFiles {
		s = append(s, b.suffix)
	}
	return s
}

// ReadSuffixes are every file of a version that a shallow re-verification
// reads: HashedSuffixes and .ziphash, which it compares with the log's
// record (and re-verification's memo hashes with the rest). The raw
// baseline of the benchmarks reads and hashes the same files.
func ReadSuffixes() []string { return append(HashedSuffixes(), ".ziphash") }

// AdmissionInputs names the documents an admission summary must name, as
// Input names them: the SBOM and boundFiles. data holds each one's content
// by suffix; one missing is an error.
func AdmissionInputs(m module.Version, data map[string][]byte) ([]sbom.ResourceDescriptor, error) {
	sbomDoc, ok := data[store.DocSPDX]
	if !ok {
		return nil, fmt.Errorf("%s: no %s to name in the verification summary", m, store.DocSPDX)
	}
	ins := []sbom.ResourceDescriptor{Input(m, store.DocSPDX, sbomDoc)}
	ins[0].MediaType = "application/spdx+json"
	for _, b := range boundFiles {
		d, ok := data[b.suffix]
		if !ok {
			return nil, fmt.Errorf("%s: no %s to name in the verification summary", m, b.suffix)
		}
		in := Input(m, b.suffix, d)
		in.MediaType = b.mediaType
		ins = append(ins, in)
	}
	return ins, nil
}

// Input names data, the file of m with suffix, as an admission summary
// names it: by the version and suffix, with its SHA-256.
func Input(m module.Version, suffix string, data []byte) sbom.ResourceDescriptor {
	return inputOf(m, suffix, sha256.Sum256(data))
}

func inputOf(m module.Version, suffix string, d [32]byte) sbom.ResourceDescriptor {
	return sbom.ResourceDescriptor{Name: m.Version + suffix, Digest: map[string]string{"sha256": hex.EncodeToString(d[:])}}
}

// verifiedHead returns the log's current tree, from its signed head.
func verifiedHead(ctx context.Context, opts Options) (tlog.Tree, []byte, error) {
	_, signed, err := opts.Log.TreeHead(ctx)
	if err != nil {
		return tlog.Tree{}, nil, err
	}
	tree, err := openHead(signed, opts.Verifier)
	if err != nil {
		return tlog.Tree{}, nil, fmt.Errorf("checksum log head: %w", err)
	}
	return tree, signed, nil
}

func openHead(signed []byte, v note.Verifier) (tlog.Tree, error) {
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return tlog.Tree{}, err
	}
	return tlog.ParseTree([]byte(n.Text))
}

// checkConsistency proves that the current tree extends the previous run's.
func checkConsistency(opts Options, tree tlog.Tree, r *Report) error {
	if opts.PreviousHead == nil {
		return nil
	}
	prev, err := openHead(opts.PreviousHead, opts.Verifier)
	if err != nil {
		r.add(Finding{Module: "checksum-log", Version: "-", Check: "consistency", Reason: fmt.Sprintf("previous head does not verify: %v", err)})
		return nil
	}
	if prev.N > tree.N {
		r.add(Finding{Module: "checksum-log", Version: "-", Check: "consistency",
			Reason: fmt.Sprintf("log rolled back: tree of %d records, earlier head had %d", tree.N, prev.N)})
		return nil
	}
	proof, err := opts.Log.ProveTree(tree.N, prev.N)
	if err != nil {
		return err
	}
	if err := tlog.CheckTree(proof, tree.N, tree.Hash, prev.N, prev.Hash); err != nil {
		r.add(Finding{Module: "checksum-log", Version: "-", Check: "consistency",
			Reason: fmt.Sprintf("log forked: tree %d does not extend earlier tree %d (%s): %v", tree.N, prev.N, prev.Hash, err)})
	}
	return nil
}

// checkVersion re-hashes one version and proves its record.
func checkVersion(ctx context.Context, st Store, opts Options, tree tlog.Tree, m module.Version, r *Report) (*Version, error) {
	finding := func(check, format string, args ...any) {
		r.add(Finding{Module: m.Path, Version: m.Version, Check: check, Reason: fmt.Sprintf(format, args...)})
	}
	if v, err := quick(ctx, st, opts, tree, m); err != nil || v != nil {
		if v != nil {
			r.mu.Lock()
			r.Bytes += v.ZipSize
			r.mu.Unlock()
		}
		return v, err
	}
	v := new(Version)
	zipHash, zipSHA, size, err := hashZip(ctx, st, m, opts.PublicKey != nil && opts.ZipBytes, v)
	v.ZipHash, v.ZipSize = zipHash, size
	if err != nil {
		finding("zip", "%v", err)
	}
	r.mu.Lock()
	r.Bytes += size
	r.mu.Unlock()
	modHash, gomod, err := hashMod(ctx, st, m)
	if err != nil {
		finding("go.mod", "%v", err)
	}
	v.ModHash, v.GoMod = modHash, gomod
	if opts.PublicKey != nil {
		v.ZipSHA256 = zipSHA
		checkSigned(ctx, st, opts, v, m, r, finding)
	}
	recorded, err := readFile(ctx, st, m, ".ziphash")
	if err != nil || string(bytes.TrimSpace(recorded)) != zipHash && zipHash != "" {
		finding("zip", "stored zip hashes to %s, but %s.ziphash says %q", zipHash, m.Version, bytes.TrimSpace(recorded))
	}
	if opts.Log == nil {
		return v, nil
	}
	id, text, err := opts.Log.Lookup(ctx, m)
	if errors.Is(err, fs.ErrNotExist) {
		finding("log-record", "published but not in the checksum log: clients cannot verify it")
		return v, nil
	}
	if err != nil {
		return nil, err
	}
	want := m.Path + " " + m.Version + " " + zipHash + "\n" + m.Path + " " + m.Version + "/go.mod " + modHash + "\n"
	if zipHash != "" && modHash != "" && string(text) != want {
		finding("log-record", "stored files hash to zip %s go.mod %s, but the checksum log records %q", zipHash, modHash, text)
	}
	if id >= tree.N {
		finding("inclusion", "record %d is not in the signed tree of %d records", id, tree.N)
		return v, nil
	}
	proof, err := opts.Log.ProveRecord(tree.N, id)
	if err != nil {
		return nil, err
	}
	if err := tlog.CheckRecord(proof, tree.N, tree.Hash, id, tlog.RecordHash(text)); err != nil {
		finding("inclusion", "record %d does not prove into tree %d: %v", id, tree.N, err)
	}
	return v, nil
}

// quick proves version m the short way (see Options.ZipBytes) and returns
// nil when it cannot: when any step does not hold, or the version has no
// signed summary, or its zip is too large to read whole. The caller then
// checks it the long way. The error is for failures to run at all.
func quick(ctx context.Context, st Store, opts Options, tree tlog.Tree, m module.Version) (*Version, error) {
	if opts.ZipBytes || opts.Log == nil || opts.PublicKey == nil {
		return nil, nil
	}
	id, text, err := opts.Log.Lookup(ctx, m)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err // the long way would fail on it too, after reading the zip
	}
	if err != nil || id >= tree.N {
		return nil, nil
	}
	zipH1, modH1, ok := recordedHashes(m, text)
	if !ok {
		return nil, nil
	}
	env, err := readFile(ctx, st, m, store.DocInToto)
	if err != nil {
		return nil, nil
	}
	v := &Version{ZipHash: zipH1, GoSumKnown: true, RecordBound: true}
	key := make([][]byte, 1, 5+len(boundFiles))
	key[0] = []byte("admission-summary " + m.String())
	for _, b := range boundFiles {
		data, err := readFile(ctx, st, m, b.suffix)
		if err != nil {
			return nil, nil
		}
		if b.suffix == store.DocVerdict {
			v.Record = data
		}
		in := inputOf(m, b.suffix, fileSHA256(st, m, b.suffix, data))
		v.Bound = append(v.Bound, in)
		key = append(key, []byte(in.Digest["sha256"]))
	}
	data, release, err := readZip(ctx, st, m)
	if err != nil {
		return nil, nil
	}
	defer release()
	d := fileSHA256(st, m, ".zip", data)
	v.ZipSHA256, v.ZipSize = hex.EncodeToString(d[:]), int64(len(data))
	// One subject names the zip by both hashes; the bound files are named
	// among the inputs.
	// (Each call may reuse key's array: a memo reads the parts at once.)
	summaryKey := func(pub []byte) [][]byte {
		return append(key, pub, env, []byte(v.ZipSHA256), []byte(zipH1))
	}
	// A miss opens the summary through the signature memo the long way
	// fills (checkSigned): a version the short way refuses every run (a
	// legacy summary, a changed file) then costs it a reading, not a
	// verification. It only peeks: for a version that passes, the answer
	// under key is the one entry it needs.
	verify := func(pub []byte) error {
		sum, err := sbom.OpenSummary(pub, env, opts.Memo.Peek())
		if err != nil {
			return err
		}
		return sum.AdmissionOf(m.Path, m.Version, v.ZipSHA256, zipH1, v.Bound...)
	}
	if verifyByAny(opts, verify, summaryKey) != nil {
		return nil, nil
	}
	if v.GoMod, err = readFile(ctx, st, m, ".mod"); err != nil {
		return nil, nil
	}
	if v.ModHash = gosum.ModHash(v.GoMod); v.ModHash != modH1 {
		return nil, nil
	}
	if recorded, err := readFile(ctx, st, m, ".ziphash"); err != nil || string(bytes.TrimSpace(recorded)) != zipH1 {
		return nil, nil
	}
	sig, err := readFile(ctx, st, m, store.DocSPDXSig)
	if err != nil {
		return nil, nil
	}
	doc, err := readFile(ctx, st, m, store.DocSPDX)
	if err != nil {
		return nil, nil
	}
	sd := fileSHA256(st, m, store.DocSPDX, doc)
	if verifyByAny(opts, func(pub []byte) error { return sbom.VerifyBlob(pub, doc, sig) },
		func(pub []byte) [][]byte { return [][]byte{[]byte("sbom"), pub, sd[:], sig} }) != nil {
		return nil, nil
	}
	v.SBOMSHA256 = hex.EncodeToString(sd[:])
	proof, err := opts.Log.ProveRecord(tree.N, id)
	if err != nil || tlog.CheckRecord(proof, tree.N, tree.Hash, id, tlog.RecordHash(text)) != nil {
		return nil, nil
	}
	// The bytes are the admitted zip's, so its go.sum is the admitted one.
	if v.GoSum, err = goSumInZip(data, m); err != nil {
		return nil, nil
	}
	v.Short = true
	return v, nil
}

// keys are modgate's cosign public keys: the current one, then the
// previous ones.
func (o *Options) keys() [][]byte {
	return append([][]byte{o.PublicKey}, o.PreviousKeys...)
}

// verifyByAny runs check with each of opts.keys() in turn through the
// memo, under the parts parts(pub) names, and returns nil for the first
// that verifies, else the current key's error. With previous keys, a
// success remembered under any of them is looked for first: a version
// signed with a previous key then costs no failing verification with the
// current one on every run.
func verifyByAny(opts Options, check func(pub []byte) error, parts func(pub []byte) [][]byte) error {
	if len(opts.PreviousKeys) == 0 {
		return opts.Memo.Verify(func() error { return check(opts.PublicKey) }, parts(opts.PublicKey)...)
	}
	keys := opts.keys()
	for _, pub := range keys {
		if opts.Memo.Has(memo.Key(parts(pub)...)) {
			return nil
		}
	}
	var first error
	for _, pub := range keys {
		err := opts.Memo.Verify(func() error { return check(pub) }, parts(pub)...)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// notByKeys says, after err, which keys a bad signature was checked
// against, so that a rotated signing key is recognized as the cause.
func notByKeys(opts Options, err error) string {
	if !errors.Is(err, sbom.ErrBadSignature) {
		return ""
	}
	if len(opts.PreviousKeys) == 0 {
		return " (checked against modgate's current cosign key only: if it was rotated, list the old public key in signing.previous_public_keys)"
	}
	return fmt.Sprintf(" (checked against modgate's current cosign key and %d previous)", len(opts.PreviousKeys))
}

// recordedHashes splits m's record in the checksum log into its zip and
// go.mod hashes.
func recordedHashes(m module.Version, text []byte) (zipH1, modH1 string, ok bool) {
	zipLine, rest, _ := strings.Cut(string(text), "\n")
	modLine, end, _ := strings.Cut(rest, "\n")
	zipH1, ok1 := strings.CutPrefix(zipLine, m.Path+" "+m.Version+" ")
	modH1, ok2 := strings.CutPrefix(modLine, m.Path+" "+m.Version+"/go.mod ")
	if !ok1 || !ok2 || end != "" || !strings.HasSuffix(string(text), "\n") {
		return "", "", false
	}
	return zipH1, modH1, true
}

// MaxGoSum bounds a go.sum read from a module zip or a repository.
const MaxGoSum = 16 << 20

// GoSumFromZip reads the go.sum at the root of m's module zip r, at most
// MaxGoSum bytes: nil if there is none.
func GoSumFromZip(r io.ReaderAt, size int64, m module.Version) ([]byte, error) {
	z, err := zip.NewReader(r, size)
	if err != nil {
		return nil, err
	}
	want := m.Path + "@" + m.Version + "/go.sum"
	for _, zf := range z.File {
		if zf.Name != want {
			continue
		}
		if zf.UncompressedSize64 > MaxGoSum {
			return nil, fmt.Errorf("go.sum larger than %d bytes", MaxGoSum)
		}
		rc, err := zf.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(io.LimitReader(rc, MaxGoSum))
	}
	return nil, nil
}

// GoSumFromFile is GoSumFromZip for the module zip open as f.
func GoSumFromFile(f *os.File, m module.Version) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return GoSumFromZip(f, fi.Size(), m)
}

// readZip reads m's zip into a pooled buffer, which release returns; a zip
// larger than MaxInMemory is an error.
func readZip(ctx context.Context, st Store, m module.Version) (data []byte, release func(), err error) {
	bp := zipBufs.Get().(*[]byte)
	data, err = st.ReadFile(ctx, m, ".zip", ReadLimit(".zip"), *bp)
	if err != nil {
		zipBufs.Put(bp)
		return nil, nil, err
	}
	if cap(data) > cap(*bp) {
		*bp = data[:0] // keep the larger buffer for the next zip
	}
	return data, func() { zipBufs.Put(bp) }, nil
}

// readWhole reads f into a pooled buffer, which release returns; nil data
// when f is larger than MaxInMemory.
func readWhole(f *os.File) (data []byte, release func(), err error) {
	fi, err := f.Stat()
	if err != nil || fi.Size() > MaxInMemory {
		return nil, nil, err
	}
	size := fi.Size()
	bp := zipBufs.Get().(*[]byte)
	if int64(cap(*bp)) < size {
		*bp = make([]byte, size)
	}
	data = (*bp)[:size]
	if _, err := io.ReadFull(f, data); err != nil {
		zipBufs.Put(bp)
		return nil, nil, err
	}
	return data, func() { zipBufs.Put(bp) }, nil
}

// MaxInMemory is the largest zip read into memory whole, so that its two
// digests (h1: over its files, SHA-256 over its bytes) come from one read;
// the short way (Options.ZipBytes) proves only zips up to this size.
const MaxInMemory = 64 << 20

var zipBufs = sync.Pool{New: func() any { return new([]byte) }}

// hashZip checks the stored zip of m with zip.CheckZip and returns its h1:
// hash and, with wantSHA, the SHA-256 of its bytes, reading it once when it
// fits in memory.
func hashZip(ctx context.Context, st Store, m module.Version, wantSHA bool, v *Version) (h1, sum string, size int64, err error) {
	f, err := st.OpenFile(ctx, m, ".zip")
	if err != nil {
		return "", "", 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", "", 0, err
	}
	size = fi.Size()
	// zip.CheckZip reads the central directory again. When only the h1: is
	// wanted it adds nothing: h1: covers every file name and content, so a
	// zip that hashes to the recorded h1: holds exactly the files that
	// passed CheckZip at admission.
	if wantSHA || size > MaxInMemory {
		if _, err := modzip.CheckZip(m, f.Name()); err != nil {
			return "", "", size, fmt.Errorf("stored zip no longer passes zip.CheckZip: %v", err)
		}
	}
	if size > MaxInMemory {
		if h1, err = dirhash.HashZip(f.Name(), dirhash.Hash1); err != nil {
			return "", "", size, fmt.Errorf("stored zip cannot be hashed: %v", err)
		}
		if wantSHA {
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				return "", "", size, err
			}
			sum = hex.EncodeToString(h.Sum(nil))
		}
		return h1, sum, size, nil
	}
	data, release, err := readWhole(f)
	if err == nil && data == nil {
		err = errors.New("stored zip grew while it was read")
	}
	if err != nil {
		return "", "", size, err
	}
	defer release()
	size = int64(len(data))
	if wantSHA {
		d := sha256.Sum256(data)
		sum = hex.EncodeToString(d[:])
	}
	z, err := zip.NewReader(bytes.NewReader(data), size)
	if err != nil {
		return "", sum, size, fmt.Errorf("stored zip cannot be hashed: %v", err)
	}
	names := make([]string, 0, len(z.File))
	files := make(map[string]*zip.File, len(z.File))
	goSum := m.Path + "@" + m.Version + "/go.sum"
	for _, zf := range z.File {
		names = append(names, zf.Name)
		files[zf.Name] = zf
	}
	h1, err = dirhash.Hash1(names, func(name string) (io.ReadCloser, error) {
		rc, err := files[name].Open()
		if err != nil || name != goSum {
			return rc, err
		}
		// Keep the go.sum as it is hashed (CheckZip bounded the size).
		return struct {
			io.Reader
			io.Closer
		}{io.TeeReader(rc, (*appender)(&v.GoSum)), rc}, nil
	})
	v.GoSumKnown = err == nil
	if err != nil {
		return "", sum, size, fmt.Errorf("stored zip cannot be hashed: %v", err)
	}
	return h1, sum, size, nil
}

// appender is an io.Writer that appends to a byte slice.
type appender []byte

func (a *appender) Write(p []byte) (int, error) {
	*a = append(*a, p...)
	return len(p), nil
}

func hashMod(ctx context.Context, st Store, m module.Version) (string, []byte, error) {
	data, err := readFile(ctx, st, m, ".mod")
	if err != nil {
		return "", nil, err
	}
	return gosum.ModHash(data), data, nil
}

// A Summer is a Store that knows the SHA-256 of the files it gives with
// ReadFile: a caller that read and hashed a version's files already
// (re-verification) spares the short way hashing them again.
type Summer interface {
	// SHA256 returns the SHA-256 of what ReadFile gives for the file
	// suffix of m, if known.
	SHA256(m module.Version, suffix string) ([32]byte, bool)
}

// fileSHA256 is the SHA-256 of data, the file suffix of m as st gave it.
func fileSHA256(st Store, m module.Version, suffix string, data []byte) [32]byte {
	if s, ok := st.(Summer); ok {
		if d, ok := s.SHA256(m, suffix); ok {
			return d
		}
	}
	return sha256.Sum256(data)
}

// readFile reads the file suffix of m whole, at most ReadLimit(suffix)
// bytes.
func readFile(ctx context.Context, st Store, m module.Version, suffix string) ([]byte, error) {
	return st.ReadFile(ctx, m, suffix, ReadLimit(suffix), nil)
}

// readLimits are the largest size of each file of a version that a check
// reads whole (ReadSuffixes): larger is an error, so that a damaged or
// hostile store cannot make it allocate without bound.
var readLimits = map[string]int64{
	".zip":              MaxInMemory,
	".mod":              modzip.MaxGoMod,
	".ziphash":          256,
	".info":             1 << 20,
	store.DocSPDX:       64 << 20,
	store.DocSPDXSig:    64 << 10,
	store.DocSPDXBundle: 16 << 20,
	store.DocInToto:     16 << 20,
	store.DocVerdict:    MaxRecord,
}

// ReadLimit is the largest size of the file suffix of a version that the
// checks read whole; 0 for a file they do not read.
func ReadLimit(suffix string) int64 { return readLimits[suffix] }

// checkSigned verifies the SBOM's signature and the verification summary
// of m against the stored zip, whose SHA-256 is v.ZipSHA256 (when
// opts.ZipBytes) and h1: hash v.ZipHash ("" when the zip could not be read),
// and the files it names (boundFiles). It sets v.SBOMSHA256 ("" when the
// SBOM could not be read) and what checkBound sets.
func checkSigned(ctx context.Context, st Store, opts Options, v *Version, m module.Version, r *Report, finding func(check, format string, args ...any)) {
	sig, err := readFile(ctx, st, m, store.DocSPDXSig)
	if errors.Is(err, fs.ErrNotExist) {
		r.mu.Lock()
		r.Unsigned++
		r.mu.Unlock()
		return
	}
	doc, derr := readFile(ctx, st, m, store.DocSPDX)
	switch {
	case err != nil || derr != nil:
		finding("sbom-signature", "cannot read the SBOM or its signature: %v", errors.Join(err, derr))
	default:
		d := sha256.Sum256(doc)
		v.SBOMSHA256 = hex.EncodeToString(d[:])
		err := verifyByAny(opts, func(pub []byte) error { return sbom.VerifyBlob(pub, doc, sig) },
			func(pub []byte) [][]byte { return [][]byte{[]byte("sbom"), pub, d[:], sig} })
		if err != nil {
			finding("sbom-signature", "%v%s", err, notByKeys(opts, err))
		}
	}
	env, err := readFile(ctx, st, m, store.DocInToto)
	if err != nil {
		finding("summary", "cannot read the verification summary: %v", err)
		return
	}
	// One opening for the subject and the named files: its signature is
	// verified once (and remembered), what it says is read each time.
	var sum *sbom.OpenedSummary
	err = nil
	for _, pub := range opts.keys() {
		s, serr := sbom.OpenSummary(pub, env, opts.Memo)
		if serr == nil {
			sum, err = s, nil
			break
		}
		if err == nil {
			err = serr // the current key's
		}
	}
	if sum == nil {
		finding("summary", "%v%s", err, notByKeys(opts, err))
		return
	}
	switch {
	case v.ZipSHA256 != "":
		err = sum.HasZip(v.ZipSHA256)
	case v.ZipHash != "" && !opts.ZipBytes:
		err = sum.HasDirHash(v.ZipHash)
	default:
		return // the zip finding says why
	}
	if err != nil {
		finding("summary", "%v", err)
		return
	}
	checkBound(ctx, st, sum, v, m, finding)
}

// checkBound compares the files of boundFiles with what the verification
// summary sum (already verified, about v's zip) names: each one named must
// be there with that SHA-256. One not named is from before modgate named it.
// It sets v.Record, v.RecordBound and v.Bound.
func checkBound(ctx context.Context, st Store, sum *sbom.OpenedSummary, v *Version, m module.Version, finding func(check, format string, args ...any)) {
	// A re-verification statement names the zip too, but not these files:
	// put in the admission summary's place, it would pass them all as
	// signed before modgate named them.
	if about, want := sum.ResourceURI(), sbom.ModulePURL(m.Path, m.Version); about != want {
		finding("summary", "%s is about %s, not %s: not the admission summary of this version", store.DocInToto, about, want)
		return
	}
	inputs := sum.Inputs()
	named := make(map[string]map[string]string, len(inputs))
	for _, in := range inputs {
		named[in.Name] = in.Digest
	}
	for _, b := range boundFiles {
		name := m.Version + b.suffix
		want, isNamed := named[name]
		data, err := readFile(ctx, st, m, b.suffix)
		if b.suffix == store.DocVerdict && err == nil {
			v.Record = data
		}
		switch {
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			finding(b.check, "cannot read %s: %v", name, err)
		case err != nil && isNamed:
			finding(b.check, "%s is missing; the verification summary names it", name)
		case err != nil || !isNamed:
			// Not there and not named, or signed before modgate named it.
		default:
			in := Input(m, b.suffix, data)
			if got := in.Digest["sha256"]; got != want["sha256"] {
				finding(b.check, "%s changed since it was signed: sha256 %s, the verification summary names %s", name, got, want["sha256"])
				continue
			}
			v.Bound = append(v.Bound, in)
			if b.suffix == store.DocVerdict {
				v.RecordBound = true
			}
		}
	}
}
