package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modgate/modgate/internal/memo"
	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/verifiers/integrity"
	"github.com/modgate/modgate/verifiers/tagsig"
)

// Re-verification proves each version from its stored bytes and from what
// is trusted now. A proof rests on three things:
//
//   - the bytes: the version's files and its checksum log record;
//   - the trust: modgate's cosign keys, the checksum log's key, the signer
//     groups' key files, the policy files;
//   - the time, and the log's current tree: an OpenPGP key may expire or a
//     dated revocation take effect, a policy may measure age, and the
//     record must be in the tree a client is served now.
//
// A run remembers each version it proved by the SHA-256 of the first two
// (provenKey): the next run reads and hashes every file again — what storage
// rot and tampering change — and, when nothing changed, checks only the
// third: the tag signature's validity at the new time (tagsig.Validity),
// the policies again only if they read the time, and that the tree the
// record was proven in is a prefix of the current one (one consistency
// proof per run). A byte changed, a key revoked or added, a policy edited:
// another key, and the version is proven from the start, which names what
// no longer holds. Only versions that passed every check with nothing
// skipped are remembered; a version that fails is always checked in full.
//
// The conclusions about dependencies rest on the public checksum database's
// answers too, which stay the same while its client does
// (depsum.SumDB.Epoch); a version whose proof read them is remembered with
// the epoch and proven again under another.

// stored is one version's files as a run read them, once: the bytes the
// checks of a full proof read (through storedVersion) and the digests that
// key its memo entry.
type stored struct {
	data [len(storedFiles)][]byte
	sum  [len(storedFiles)][32]byte
	// logID and logText are the version's checksum log record.
	logID   int64
	logText []byte
	// key is the memo key of the version (provenKey).
	key [32]byte
}

// storedFiles are the files of a version a shallow proof reads
// (integrity.ReadSuffixes), in this order, each at most as large as
// integrity reads it.
var storedFiles = func() (fs [9]struct {
	suffix string
	limit  int64
}) {
	for i, suffix := range [...]string{".info", ".mod", ".zip", ".ziphash", store.DocSPDX, store.DocSPDXSig,
		store.DocSPDXBundle, store.DocInToto, store.DocVerdict} {
		fs[i].suffix, fs[i].limit = suffix, integrity.ReadLimit(suffix)
	}
	return fs
}()

// Indexes into storedFiles.
const (
	fileInfo    = 0
	fileZip     = 2
	fileZipHash = 3
	fileSPDX    = 4
	fileVerdict = 8
)

var storedPool = sync.Pool{New: func() any { return new(stored) }}

// read reads every file of storedFiles from files but .info (read with
// them: store.Dir.ReadVersion), and m's record from the log, and hashes
// them. false: a file is missing or unreadable, or there is no record; the
// full checks then read the store themselves and say what is wrong.
func (s *stored) read(ctx context.Context, files *store.Files, lg integrity.Log, m module.Version) bool {
	for i, f := range storedFiles {
		if i != fileInfo {
			data, err := files.ReadFile(f.suffix, f.limit, s.data[i][:0])
			if err != nil {
				return false
			}
			s.data[i] = data
		}
		if i != fileZipHash {
			s.sum[i] = sha256.Sum256(s.data[i])
		}
	}
	id, text, err := lg.Lookup(ctx, m)
	if err != nil {
		return false
	}
	s.logID, s.logText = id, text
	return true
}

// release returns s to the pool, keeping its buffers; one that held a
// large zip is dropped instead, so that the pool does not keep it.
func (s *stored) release() {
	if cap(s.data[fileZip]) > 8<<20 {
		return
	}
	storedPool.Put(s)
}

// provenKey is the memo key of version m as s holds it, under the trust
// digest trust: memo.Key of every part.
func provenKey(trust [32]byte, m module.Version, s *stored) [32]byte {
	var parts [len(storedFiles) + 5][]byte
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], uint64(s.logID))
	ps := append(parts[:0], trust[:], []byte(m.Path), []byte(m.Version), id[:], s.logText)
	for i := range storedFiles {
		if i == fileZipHash {
			ps = append(ps, s.data[i])
		} else {
			ps = append(ps, s.sum[i][:])
		}
	}
	return memo.Key(ps...)
}

// trustDigest is the SHA-256 of what a run's proofs trust besides the bytes
// of each version: the cosign public keys, the checksum log's key, the
// signer groups' key files and the policy files.
func (rv *Reverifier) trustDigest() [32]byte {
	var hash [4]byte
	binary.BigEndian.PutUint32(hash[:], rv.iopts.Verifier.KeyHash())
	parts := [][]byte{[]byte("modgate re-verification proof v1"), []byte(rv.iopts.Verifier.Name()), hash[:],
		[]byte(rv.signers.digest), []byte(rv.policies.Digest()), rv.iopts.PublicKey}
	return memo.Key(append(parts, rv.iopts.PreviousKeys...)...)
}

// A proof is what a run remembers of a version it proved.
type proof struct {
	// tree is the log tree the record was proven in (the run's head).
	tree *tlog.Tree
	// tag is the tag signature's validity; upstream says the version is a
	// public module's, which has no tag (its hashes were proven against
	// the public checksum database instead).
	tag      tagsig.Validity
	upstream bool
	// epoch is the public checksum database's epoch the proof read its
	// answers under; publicDB says whether it read any.
	epoch    uint64
	publicDB bool
}

// proofs are the memo of proven versions, by provenKey.
type proofs = memo.Map[[32]byte, proof]

// holds reports whether what a remembered proof of a version rests on in
// time still holds: its tree is a prefix of this run's, its tag signature
// is valid now, the public checksum database's answers are the same ones,
// and the policies (only if they read the time) still admit it.
func (rv *Reverifier) holds(ctx context.Context, m module.Version, s *stored, p proof) bool {
	if !rv.extends(p.tree) {
		return false
	}
	if p.publicDB && p.epoch != rv.p.publicDB.epoch() {
		return false
	}
	if !p.upstream && p.tag.At(rv.now) != nil {
		return false
	}
	if rv.policies.UsesTime() {
		rec, err := decodeRecord(s.data[fileVerdict])
		if err != nil || rec.Input == nil || !rv.policies.Evaluate(ctx, rec.Input, rv.now).Allowed {
			return false
		}
	}
	return true
}

// extends reports whether tree t (a proof's) is a prefix of this run's
// head: a record proven in t is then in the head too. One consistency
// proof per tree a run meets (most proofs share the previous run's).
func (rv *Reverifier) extends(t *tlog.Tree) bool {
	head := rv.head.Tree
	if *t == head {
		return true
	}
	rv.treesMu.Lock()
	defer rv.treesMu.Unlock()
	if ok, done := rv.trees[*t]; done {
		return ok
	}
	ok := false
	if t.N > 0 && t.N <= head.N {
		pr, err := rv.iopts.Log.ProveTree(head.N, t.N)
		ok = err == nil && tlog.CheckTree(pr, head.N, head.Hash, t.N, t.Hash) == nil
	}
	if rv.trees == nil {
		rv.trees = make(map[tlog.Tree]bool)
	}
	rv.trees[*t] = ok
	return ok
}

// fromProof is the result for version m proven before, as s holds it (its
// zip's h1: is what .ziphash holds: the log record holds the same, or the
// version would not have been proven).
func (rv *Reverifier) fromProof(m module.Version, s *stored) *Reverified {
	res := &Reverified{Module: m.Path, Version: m.Version, Bytes: int64(len(s.data[fileZip])), Remembered: true}
	if rv.p.signer != nil {
		// The three strings in one.
		var buf [2*2*sha256.Size + 64]byte
		b := hex.AppendEncode(buf[:0], s.sum[fileZip][:])
		b = hex.AppendEncode(b, s.sum[fileSPDX][:])
		b = append(b, bytes.TrimSpace(s.data[fileZipHash])...)
		all := string(b)
		const n = 2 * sha256.Size
		res.summary = newSummary{zipSHA: all[:n], zipH1: all[2*n:], sbomSHA: all[n : 2*n]}
	}
	return res
}

// storedVersion is the store as the full checks of one version see it: the
// files the run read (stored) are given from memory, copied, with the
// SHA-256 the run made of them (integrity.Summer), so that the checks judge
// the very bytes the memo key names and hash none twice; anything else is
// read from the store.
type storedVersion struct {
	oneVersion
	s *stored
}

func (sv *storedVersion) ReadFile(ctx context.Context, m module.Version, suffix string, limit int64, buf []byte) ([]byte, error) {
	if i := sv.file(m, suffix); i >= 0 && int64(len(sv.s.data[i])) <= limit {
		// A copy: the caller owns what ReadFile returns, and integrity
		// keeps zip buffers in a pool of its own (TestReverifyCorpus).
		return append(buf[:0], sv.s.data[i]...), nil
	}
	return sv.oneVersion.ReadFile(ctx, m, suffix, limit, buf)
}

func (sv *storedVersion) SHA256(m module.Version, suffix string) ([32]byte, bool) {
	if i := sv.file(m, suffix); i >= 0 && i != fileZipHash {
		return sv.s.sum[i], true
	}
	return [32]byte{}, false
}

// file is the index in storedFiles of the file suffix of m, -1 if the run
// did not read it.
func (sv *storedVersion) file(m module.Version, suffix string) int {
	if m == sv.m {
		for i, f := range storedFiles {
			if f.suffix == suffix {
				return i
			}
		}
	}
	return -1
}

// storedLog is the checksum log as the full checks of one version see it:
// that version's record is the one the run read.
type storedLog struct {
	integrity.Log
	m module.Version
	s *stored
}

func (sl storedLog) Lookup(ctx context.Context, m module.Version) (int64, []byte, error) {
	if m == sl.m {
		return sl.s.logID, bytes.Clone(sl.s.logText), nil
	}
	return sl.Log.Lookup(ctx, m)
}
