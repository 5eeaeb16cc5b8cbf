package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modgate/modgate/policies"
	"github.com/modgate/modgate/sbom"
	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/verifiers/depsum"
	"github.com/modgate/modgate/verifiers/integrity"
	"github.com/modgate/modgate/verifiers/tagsig"
)

// ReverifyOptions configure a re-verification run.
type ReverifyOptions struct {
	// Log is modgate's checksum log with proofs; nil when no checksum
	// database is configured (then only the stored hashes are re-checked).
	Log integrity.Log
	// Verifier checks the log's signed heads; required with Log.
	Verifier note.Verifier
	// PreviousHead is the signed head the last run checked: the current one
	// must extend it.
	PreviousHead []byte
	// Deep checks each zip the long way (zip.CheckZip, the h1: of its
	// files, the SHA-256 of its bytes against the verification summary) and
	// regenerates each SBOM, which must be byte-for-byte the published one.
	// Without it nothing is rebuilt or extracted: the zip's bytes are hashed
	// once with SHA-256, which the signed verification summary binds to the
	// h1: in the checksum log (integrity.Options.ZipBytes).
	Deep bool
	// Versions is how many versions the whole run covers (all its shards),
	// when known: the memos of verified signatures grow to hold them all,
	// so that the next run finds every one (a memo smaller than the store
	// would start over during each run and miss on most of it).
	Versions int
}

// memoPerVersion is how many entries a version takes in the memo of
// cosign signatures (its SBOM's signature and its summary's), with
// headroom for admissions between runs.
const memoPerVersion = 5.0 / 2

// maxExpected bounds ReverifyOptions.Versions (it comes from a queue
// message): memos for more versions than this start over during a run.
const maxExpected = 1 << 24

// A Reverifier re-proves admitted versions against what is trusted now:
// the stored bytes against the checksum log, the signed documents against
// modgate's key, the tag against the signers configured now, the go.sum
// against the checksum databases, and the recorded policy input against the
// policies loaded now. One Reverifier serves one run: the log's head and the
// policy set are read once, when it is made. Safe for concurrent use.
type Reverifier struct {
	p        *Pipeline
	opts     ReverifyOptions
	iopts    integrity.Options
	head     *integrity.Head
	policies *policies.Set
	signers  *signers
	now      time.Time
	// proofs remember the versions proven, for this run and the next
	// (proven.go); nil when a run cannot use them. trust is the digest of
	// what this run trusts (trustDigest); trees are the earlier heads found
	// to be prefixes of this run's, or not.
	proofs  *proofs
	trust   [32]byte
	treesMu sync.Mutex
	trees   map[tlog.Tree]bool
}

// Reverified is the outcome of re-verifying one version.
type Reverified struct {
	Module  string `json:"module"`
	Version string `json:"version"`
	// Problems are the checks that no longer pass; none means the version
	// is still good.
	Problems []Problem `json:"problems,omitempty"`
	// Skipped names checks that could not run for lack of a record (a
	// version admitted before modgate kept what they need).
	Skipped []string `json:"skipped,omitempty"`
	// summary is what a new verification summary says of a version that
	// passed (Reverifier.Sign), when a signing key is configured.
	summary newSummary
	// Bytes is how many stored zip bytes were re-hashed.
	Bytes int64 `json:"bytes"`
	// Remembered says that a run proved the version before from the same
	// bytes under the same trust, so that only what changes with time was
	// checked again (proven.go).
	Remembered bool `json:"remembered,omitempty"`
	// Quarantine is the version's quarantine as the check began (nil when
	// it was not quarantined), read through the directory handle of its
	// files; valid when QuarantineRead.
	Quarantine     *store.Quarantine `json:"-"`
	QuarantineRead bool              `json:"-"`
}

// Passed reports whether every check passed.
func (r *Reverified) Passed() bool { return len(r.Problems) == 0 }

// Reason is one line saying why the version failed.
func (r *Reverified) Reason() string {
	var b strings.Builder
	for i, p := range r.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Check + ": " + p.Reason)
	}
	return b.String()
}

// Lines returns one line per problem, as module@version: check: reason.
func (r *Reverified) Lines() []string {
	v := &Verdict{Module: r.Module, Version: r.Version, Problems: r.Problems}
	return v.Lines()
}

// NewReverifier starts a run: it reads and proves the log's current head
// (consistent with opts.PreviousHead) and takes the current policy set.
func (p *Pipeline) NewReverifier(ctx context.Context, opts ReverifyOptions) (*Reverifier, error) {
	// Shallow runs hash each zip's bytes once; --deep checks them the long
	// way (integrity.Options.ZipBytes).
	iopts := integrity.Options{Log: opts.Log, Verifier: opts.Verifier, PreviousHead: opts.PreviousHead, Memo: p.memo, ZipBytes: opts.Deep}
	if p.signer != nil {
		iopts.PublicKey, iopts.PreviousKeys = p.signer.PublicKeyPEM(), p.signer.PreviousKeys()
	}
	// The signers as their key files say now: a key revoked since the
	// last run is revoked for this one, even in a process that has run
	// for days. Files that do not load stop the run rather than let it
	// trust what they no longer say.
	if _, err := p.ReloadSigners(); err != nil {
		return nil, err
	}
	signers := p.signers.Load()
	if n := min(opts.Versions, maxExpected); n > 0 {
		p.memo.Grow(int(memoPerVersion * float64(n)))
		for _, g := range signers.groups {
			g.ring.ExpectSignatures(n + n/4)
		}
	}
	head, err := integrity.VerifiedHead(ctx, iopts)
	if err != nil {
		return nil, err
	}
	rv := &Reverifier{p: p, opts: opts, iopts: iopts, head: head, policies: p.policies.Load(), signers: signers,
		now: p.Now().UTC().Truncate(time.Second)}
	// Proofs are remembered for shallow runs that prove versions the short
	// way (a log and a signing key), with the dependency checker modgate
	// builds, whose answers it knows the life of.
	if p.proofs != nil && !opts.Deep && opts.Log != nil && iopts.PublicKey != nil {
		rv.proofs, rv.trust = p.proofs, rv.trustDigest()
		if n := min(opts.Versions, maxExpected); n > 0 {
			p.proofs.Grow(n + n/4)
		}
	}
	return rv, nil
}

// ExpiryWarning is how far ahead a run warns of signing keys that expire
// (Warnings).
const ExpiryWarning = 30 * 24 * time.Hour

// Warnings are things a run found that do not fail any version yet but
// will: the OpenPGP keys of the signer groups that have expired or expire
// within ExpiryWarning. The versions such a key signed fail re-verification
// from the moment it expires, unless it is extended.
func (rv *Reverifier) Warnings() []string {
	var out []string
	for _, x := range rv.signers.expiring(rv.now, rv.now.Add(ExpiryWarning)) {
		when := x.Expires.Format(time.RFC3339)
		if x.Expires.After(rv.now) {
			out = append(out, fmt.Sprintf("signer group %q: openpgp key %s (%s) expires %s, in %.0f days: the versions it signed fail re-verification from then unless it is extended",
				x.Group, x.Fingerprint, x.Name, when, x.Expires.Sub(rv.now).Hours()/24))
		} else {
			out = append(out, fmt.Sprintf("signer group %q: openpgp key %s (%s) expired %s: the versions it signed fail re-verification until it is extended",
				x.Group, x.Fingerprint, x.Name, when))
		}
	}
	return out
}

// Busy reports whether an admission is running in this process: a
// re-verification beside it slows down to one version at a time
// (reverify.Options.Busy), so that admissions keep their latency.
func (rv *Reverifier) Busy() bool { return rv.p.admitting.Load() > 0 }

// Head is the log head this run proves against, with the findings of its
// consistency with the previous run's head (problems of the whole log, not
// of one version).
func (rv *Reverifier) Head() *integrity.Head { return rv.head }

// Version re-verifies one published version. Its error means the checks
// could not run (a database or the store unreachable): the version's state
// should not change on it.
//
// The version's files and log record are read and hashed first; a version
// proven before from the same bytes under the same trust (proofs) is then
// judged only on what changes with time, and any other is proven in full
// (check) from those bytes.
func (rv *Reverifier) Version(ctx context.Context, m module.Version) (*Reverified, error) {
	var (
		files *store.Files
		err   error
		s     *stored
	)
	if rv.proofs == nil {
		files, err = rv.p.store.OpenVersion(ctx, m)
	} else {
		read := storedPool.Get().(*stored)
		defer read.release()
		var info []byte
		if files, info, err = rv.p.store.ReadVersion(ctx, m, read.data[fileInfo][:0]); err == nil {
			read.data[fileInfo] = info
			s = read
		}
	}
	if err != nil {
		res, _, err := rv.check(ctx, m, nil, nil)
		return res, err
	}
	defer files.Close()
	q, qerr := files.Quarantined()
	if s != nil && s.read(ctx, files, rv.iopts.Log, m) {
		s.key = provenKey(rv.trust, m, s)
		if p, ok := rv.proofs.Get(s.key); ok && rv.holds(ctx, m, s, p) {
			res := rv.fromProof(m, s)
			res.Quarantine, res.QuarantineRead = q, qerr == nil
			return res, nil
		}
	} else {
		s = nil
	}
	res, p, err := rv.check(ctx, m, files, s)
	if err != nil {
		return nil, err
	}
	res.Quarantine, res.QuarantineRead = q, qerr == nil
	if p != nil {
		rv.proofs.Add(s.key, *p)
	}
	return res, nil
}

// check proves version m in full: from s (the files and record the run
// read) when it is set, else from the store. files are the version's files,
// nil when they could not be opened (each file is then opened from the
// store's root, which says why). It returns the proof to remember when the
// version passed every check, from s, with nothing skipped.
func (rv *Reverifier) check(ctx context.Context, m module.Version, files *store.Files, s *stored) (*Reverified, *proof, error) {
	res := &Reverified{Module: m.Path, Version: m.Version}
	add := func(check string, security bool, format string, args ...any) {
		res.Problems = append(res.Problems, Problem{Check: check, Reason: fmt.Sprintf(format, args...), Security: security})
	}
	pr := &proof{tree: &rv.head.Tree}

	// The stored bytes, the log record and its proof, the signed documents:
	// every file opened relative to the version's directory, or given as
	// the run read it.
	one := oneVersion{Store: rv.p.store, m: m, files: files}
	var st integrity.Store = &one
	iopts := rv.iopts
	if s != nil {
		st = &storedVersion{oneVersion: one, s: s}
		iopts.Log = storedLog{Log: iopts.Log, m: m, s: s}
	}
	iv, err := integrity.CheckVersion(ctx, st, iopts, rv.head, m)
	if err != nil {
		return nil, nil, err
	}
	res.Bytes = iv.ZipSize
	for _, f := range iv.Findings {
		add(f.Check, true, "%s", f.Reason)
	}
	if rv.iopts.PublicKey != nil && iv.Unsigned {
		add("sbom-signature", false, "published without a signed SBOM and verification summary")
	}

	data := iv.Record
	if data == nil {
		data, err = st.ReadFile(ctx, m, store.DocVerdict, maxRecord, nil)
	}
	var rec *reverifyRecord
	if err == nil {
		rec, err = decodeRecord(data)
		if err != nil {
			err = fmt.Errorf("%s: %w", m, err)
		}
	}
	if err != nil {
		add("record", false, "no admission record to re-check against: %v", err)
		return res, nil, nil
	}
	if rv.iopts.PublicKey != nil && !iv.Unsigned && !iv.RecordBound && len(iv.Findings) == 0 {
		// Signed before modgate named the record in the summary: the
		// policies below run on a record nothing vouches for.
		res.Skipped = append(res.Skipped, "record-signature")
	}
	if rec.Hashes != nil && iv.ZipHash != "" && (rec.Hashes.Zip != iv.ZipHash || rec.Hashes.Mod != iv.ModHash) {
		add("record", true, "admitted with zip %s go.mod %s, stored files hash to zip %s go.mod %s",
			rec.Hashes.Zip, rec.Hashes.Mod, iv.ZipHash, iv.ModHash)
	}

	// The tag's signer, as trusted now; for a public module, the public
	// checksum database, as it says now.
	public := rec.Input != nil && rec.Input.Source == "upstream"
	pr.epoch = rv.p.publicDB.epoch()
	if public {
		pr.publicDB, pr.upstream = true, true
		if err := rv.publicRecord(ctx, m, iv, add); err != nil {
			return nil, nil, err
		}
	} else if len(rec.TagObject) == 0 {
		res.Skipped = append(res.Skipped, "tag-signature")
	} else if tag, err := tagsig.Parse(rec.TagObject); err != nil {
		add("tag-signature", true, "recorded tag object: %v", err)
	} else if !strings.HasSuffix(tag.Name, m.Version) || rec.Input != nil && rec.Input.Tag.Name != tag.Name {
		add("tag-signature", true, "recorded tag object is for tag %q, not this version", tag.Name)
	} else if signer, err := rv.signers.trusted(m.Path, tag, rv.now); err != nil {
		add("tag-signature", isSecurity(err), "%s", plainReason(err))
	} else {
		pr.tag = signer.Validity()
	}

	// go.mod and go.sum against the checksum databases, as they say now.
	usedPublic, err := rv.dependencies(ctx, m, iv, public, add)
	if err != nil {
		return nil, nil, err
	}
	pr.publicDB = pr.publicDB || usedPublic

	// The current policies, on the input the version was admitted with.
	if rv.policies != nil {
		if rec.Input == nil {
			add("policy", false, "no recorded policy input")
		} else if d := rv.policies.Evaluate(ctx, rec.Input, rv.now); !d.Allowed {
			for _, r := range d.Results {
				if r.Result == policies.Pass || r.Action == policies.Warn && r.Result == policies.Warned {
					continue
				}
				where := r.File + "/" + r.Rule
				if r.File == "" {
					where = "default"
				}
				add("policy", false, "%s: %s: %s", where, r.Result, r.Message)
			}
			if res.Passed() {
				add("policy", false, "policy denied the module")
			}
		}
	}

	if rv.opts.Deep && iv.ZipHash != "" {
		if err := rv.deepSBOM(ctx, m, rec, iv, add); err != nil {
			return nil, nil, err
		}
	}

	if res.Passed() && rv.p.signer != nil && iv.ZipHash != "" {
		res.summary = newSummary{zipSHA: iv.ZipSHA256, zipH1: iv.ZipHash, sbomSHA: iv.SBOMSHA256}
	}
	// Remembered: a pass from the bytes the run read, proven the short
	// way, with nothing skipped and the public database's answers (if it
	// was asked) read under one epoch.
	if s == nil || !res.Passed() || len(res.Skipped) > 0 || !iv.Short ||
		pr.publicDB && (pr.epoch == 0 || pr.epoch != rv.p.publicDB.epoch()) {
		return res, nil, nil
	}
	return res, pr, nil
}

// decodeRecord reads the part of an admission record re-verification uses.
func decodeRecord(data []byte) (*reverifyRecord, error) {
	rec := new(reverifyRecord)
	if err := json.Unmarshal(data, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// reverifyRecord is the part of a Record that re-verification uses;
// decoding skips the rest (in real records the policy decision, with every
// rule's result, is most of it).
type reverifyRecord struct {
	Input     *policies.Input `json:"input"`
	Hashes    *Hashes         `json:"hashes"`
	TagObject []byte          `json:"tag_object,omitempty"`
}

// Sign signs one verification summary, with this run's time, for every
// version in rs that passed: a statement with each of their zips as a
// subject, so one signature per batch instead of one per version. It
// returns nil when there is nothing to sign or no signing key.
func (rv *Reverifier) Sign(ctx context.Context, rs []*Reverified, run string) ([]byte, error) {
	if rv.p.signer == nil {
		return nil, nil
	}
	// One array of summaries and one of their inputs for the batch.
	sums := make([]sbom.Summary, 0, len(rs))
	inputs := make([]sbom.ResourceDescriptor, 0, len(rs))
	policy := ""
	if rv.policies != nil {
		policy = rv.policies.Digest()
	}
	for _, r := range rs {
		ns := r.summary
		if ns.zipH1 == "" || !r.Passed() {
			continue
		}
		sum := sbom.Summary{
			Module: r.Module, Version: r.Version, ZipSHA256: ns.zipSHA, ZipHash: ns.zipH1,
			PolicyURI: VerifierID + "/policies", PolicyDigest: policy, Verified: rv.now,
			VerifierID: VerifierID, VerifierVersion: rv.p.version,
		}
		// Not the other files the admission summary names (integrity's
		// Bound): they still match it, and one batch statement names
		// every zip of a batch, served whole with each of them.
		if ns.sbomSHA != "" {
			inputs = append(inputs, sbom.ResourceDescriptor{Name: r.Version + store.DocSPDX, MediaType: "application/spdx+json",
				Digest: map[string]string{"sha256": ns.sbomSHA}})
			sum.Inputs = inputs[len(inputs)-1 : len(inputs) : len(inputs)]
		}
		sums = append(sums, sum)
	}
	if len(sums) == 0 {
		return nil, nil
	}
	return rv.p.signer.SignSummaries(sums, VerifierID+"/reverify/"+run)
}

// newSummary is what the new verification summary of a version that
// passed says of it: its zip's SHA-256 (hex) and h1: hash, and its SBOM's
// SHA-256 (hex; "" when it has none). Zero: no summary.
type newSummary struct{ zipSHA, zipH1, sbomSHA string }

// publicRecord checks a public module's stored hashes against the public
// checksum database.
func (rv *Reverifier) publicRecord(ctx context.Context, m module.Version, iv *integrity.Version, add func(string, bool, string, ...any)) error {
	lines, err := rv.p.publicDB.Lookup(ctx, m)
	if err != nil {
		if depsum.IsTransient(err) || errors.Is(err, depsum.ErrUnavailable) {
			return err
		}
		add("checksum-db", true, "%v", err)
		return nil
	}
	want := map[string]bool{m.Path + " " + m.Version + " " + iv.ZipHash: true, m.Path + " " + m.Version + "/go.mod " + iv.ModHash: true}
	for _, l := range lines {
		delete(want, l)
	}
	if len(want) > 0 && iv.ZipHash != "" {
		add("checksum-db", true, "SECURITY ERROR: the public checksum database now says %q for zip %s go.mod %s", strings.Join(lines, "; "), iv.ZipHash, iv.ModHash)
	}
	return nil
}

// dependencies re-runs the dependency check on the stored go.mod and the
// go.sum in the stored zip. It reports whether the check read the public
// checksum database's answers.
func (rv *Reverifier) dependencies(ctx context.Context, m module.Version, iv *integrity.Version, public bool, add func(string, bool, string, ...any)) (usedPublic bool, err error) {
	gomod, gosum := iv.GoMod, iv.GoSum
	if gomod == nil {
		return false, nil // the go.mod finding says why
	}
	if !iv.GoSumKnown {
		f, err := rv.p.store.OpenFile(ctx, m, ".zip")
		if err == nil {
			gosum, err = integrity.GoSumFromFile(f, m)
			f.Close()
		}
		if err != nil {
			add("dependencies", true, "go.sum in the stored zip: %v", err)
			return false, nil
		}
	}
	deps := rv.p.deps
	if public {
		deps = rv.p.depsLines
	}
	rep, err := deps.Check(ctx, m, gomod, gosum)
	if rep != nil {
		for _, c := range rep.Checked {
			usedPublic = usedPublic || c.DB == "public"
		}
	}
	var problems *depsum.CheckErrors
	switch {
	case err == nil:
	case depsum.IsTransient(err), errors.Is(err, depsum.ErrConfig):
		return usedPublic, err
	case errors.As(err, &problems):
		for _, p := range problems.Problems {
			add("dependencies", depsum.IsSecurity(p), "%s", p.Error())
		}
	default:
		add("dependencies", depsum.IsSecurity(err), "%v", err)
	}
	return usedPublic, nil
}

// deepSBOM regenerates the SBOM from the stored zip and compares it with
// the published one; generation is reproducible, so any difference is a
// change in the inputs or the document.
func (rv *Reverifier) deepSBOM(ctx context.Context, m module.Version, rec *reverifyRecord, iv *integrity.Version, add func(string, bool, string, ...any)) error {
	stored, err := rv.p.store.ReadFile(ctx, m, store.DocSPDX, 64<<20, nil)
	if err != nil {
		add("sbom", false, "no published SBOM: %v", err)
		return nil
	}
	f, err := rv.p.store.OpenFile(ctx, m, ".zip")
	if err != nil {
		return err
	}
	zipFile := f.Name()
	f.Close()
	licenses, err := sbom.Licenses(zipFile, m)
	if err != nil {
		add("sbom", true, "reading license files: %v", err)
		return nil
	}
	sum := iv.ZipSHA256
	if sum == "" {
		if sum, err = sbom.SHA256File(zipFile); err != nil {
			return err
		}
	}
	var tagTime time.Time
	if rec.Input != nil {
		tagTime = rec.Input.Tag.Time
	}
	gen, err := rv.p.sbomGen.get()
	if err != nil {
		return err
	}
	doc, err := gen.Generate(ctx, sbom.Module{Path: m.Path, Version: m.Version, ZipFile: zipFile,
		ZipHash: iv.ZipHash, ModHash: iv.ModHash, ZipSHA256: sum, Time: tagTime, Licenses: licenses, GoMod: iv.GoMod})
	if err != nil {
		return err
	}
	if !bytes.Equal(doc, stored) {
		a, b := sha256.Sum256(stored), sha256.Sum256(doc)
		add("sbom", false, "regenerated SBOM differs from the published one (sha256 %s, regenerated %s)",
			hex.EncodeToString(a[:8]), hex.EncodeToString(b[:8]))
	}
	return nil
}

// plainReason is err's message on one line.
func plainReason(err error) string { return oneLine(err.Error()) }

// oneVersion is the store as integrity and the record reader see it while
// one version is re-verified: that version's files are opened relative to
// its directory (files; nil when it could not be opened, and then each
// file is opened from the store's root and says why).
type oneVersion struct {
	Store
	m     module.Version
	files *store.Files
}

func (o *oneVersion) OpenFile(ctx context.Context, m module.Version, suffix string) (*os.File, error) {
	if o.files == nil || m != o.m {
		return o.Store.OpenFile(ctx, m, suffix)
	}
	return o.files.Open(suffix)
}

func (o *oneVersion) ReadFile(ctx context.Context, m module.Version, suffix string, limit int64, buf []byte) ([]byte, error) {
	if o.files == nil || m != o.m {
		return o.Store.ReadFile(ctx, m, suffix, limit, buf)
	}
	return o.files.ReadFile(suffix, limit, buf)
}

func (*oneVersion) Walk(context.Context, func(module.Version) error) error {
	return errors.New("pipeline: walking the store is not supported here")
}
