package sumlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	lockName    = "lock"
	recordsName = "records"
	hashesName  = "hashes"
)

// Open opens the log in dir, creating dir and an empty log if needed, and
// takes the directory's lock (ErrLocked if another Log has it).
//
// Open repairs what a crash leaves (see the package documentation and
// Recovery) and rebuilds the index from the records. It fails with
// ErrCorrupt, and changes no log file, when the records do not hash to the
// signed tree head in latest: the log would otherwise serve a tree that is
// not an extension of one it already served.
//
// signer and verifier must be one key pair; the verifier key is the one
// clients put in GOSUMDB.
func Open(dir string, signer note.Signer, verifier note.Verifier) (_ *Log, err error) {
	if err := checkKeys(signer, verifier); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sumlog: %w", err)
	}
	l := &Log{
		dir:      dir,
		signer:   signer,
		verifier: verifier,
		writer:   make(chan struct{}, 1),
		index:    make(map[module.Version]int64),
	}
	if l.lock, err = lockFile(filepath.Join(dir, lockName)); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			for _, f := range []*os.File{l.records, l.hashes, l.lock} {
				if f != nil {
					f.Close()
				}
			}
		}
	}()
	if err := l.recover(); err != nil {
		return nil, err
	}
	return l, nil
}

// recover brings the files to the state of the last committed record (or a
// later durable one) and fills in the Log's memory.
func (l *Log) recover() error {
	latest, haveLatest, err := readLatest(l.dir, l.verifier)
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.dir, latestTmpName)
	if err := os.Remove(tmp); err == nil {
		l.recovery.RemovedTmpFile = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sumlog: %w", err)
	}

	// A log with a head has a records file; creating an empty one would
	// only hide that it is gone.
	flag := os.O_RDWR | os.O_CREATE
	if haveLatest {
		flag = os.O_RDWR
	}
	l.records, err = os.OpenFile(filepath.Join(l.dir, recordsName), flag, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s is missing, but the signed tree head in %s covers %d records", ErrCorrupt, filepath.Join(l.dir, recordsName), latestName, latest.N)
	}
	if err != nil {
		return fmt.Errorf("sumlog: %w", err)
	}
	l.hashes, err = os.OpenFile(filepath.Join(l.dir, hashesName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("sumlog: %w", err)
	}

	// Nothing below writes until the records are known to extend latest.
	end, size, err := l.scanRecords(latest.N)
	if err != nil {
		return err
	}
	n := int64(len(l.offsets)) - 1
	if n < latest.N {
		return fmt.Errorf("%w: %s has %d records, but the signed tree head in %s covers %d: records were lost",
			ErrCorrupt, l.records.Name(), n, latestName, latest.N)
	}
	if haveLatest {
		th, err := tlog.TreeHash(latest.N, hashReader(l.hashAll))
		if err != nil {
			return fmt.Errorf("sumlog: %w", err)
		}
		if th != latest.Hash {
			return fmt.Errorf("%w: the first %d records in %s hash to %v, but the signed tree head in %s says %v: records were changed",
				ErrCorrupt, latest.N, l.records.Name(), th, latestName, latest.Hash)
		}
	}

	if end == 0 {
		if _, err := l.records.WriteAt([]byte(recordsHeader), 0); err != nil {
			return fmt.Errorf("sumlog: %w", err)
		}
		end = int64(len(recordsHeader))
		l.offsets[0] = end
	}
	if size != end {
		if size > end {
			l.recovery.TornBytes = size - end
		}
		if err := l.records.Truncate(end); err != nil {
			return fmt.Errorf("sumlog: %w", err)
		}
	}
	if err := l.records.Sync(); err != nil {
		return fmt.Errorf("sumlog: %w", err)
	}
	if err := l.repairHashes(); err != nil {
		return err
	}
	if err := syncDir(l.dir); err != nil {
		return fmt.Errorf("sumlog: %w", err)
	}

	l.tree = tlog.Tree{N: n}
	if l.tree.Hash, err = tlog.TreeHash(n, hashReader(l.hashAll)); err != nil {
		return fmt.Errorf("sumlog: %w", err)
	}
	l.recovery.Records = n
	l.recovery.CreatedLatest = !haveLatest
	if haveLatest && n == latest.N {
		l.signed = latest.signed
		return nil
	}
	l.recovery.UnsignedTail = n - latest.N
	if l.signed, err = signTree(l.tree, l.signer); err != nil {
		return err
	}
	return writeLatest(l.dir, l.signed)
}

// signedTree is a verified tree head read from latest.
type signedTree struct {
	tlog.Tree
	signed []byte
}

// readLatest reads and verifies dir/latest. A missing file is a new log, or
// one whose first head a crash interrupted; both start from the empty tree.
func readLatest(dir string, verifier note.Verifier) (signedTree, bool, error) {
	name := filepath.Join(dir, latestName)
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return signedTree{}, false, nil
	}
	if err != nil {
		return signedTree{}, false, fmt.Errorf("sumlog: %w", err)
	}
	n, err := note.Open(data, note.VerifierList(verifier))
	if err != nil {
		return signedTree{}, false, fmt.Errorf("%w: %s does not verify with key %s+%08x (another log's key, or a changed file): %v",
			ErrCorrupt, name, verifier.Name(), verifier.KeyHash(), err)
	}
	t, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		return signedTree{}, false, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	return signedTree{Tree: t, signed: data}, true, nil
}

// scanRecords reads every entry of the records file, recomputing the stored
// hashes and the index. It stops at the first entry that is incomplete or
// fails its checks: past the records that latest covers, that is the torn
// tail of an Append that never returned; within them it is corruption.
// It returns where the good entries end (0 if the file lacks its header)
// and the file's size.
func (l *Log) scanRecords(signedN int64) (end, size int64, err error) {
	fi, err := l.records.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("sumlog: %w", err)
	}
	size = fi.Size()
	r := io.NewSectionReader(l.records, 0, size)
	hdr := make([]byte, len(recordsHeader))
	k, _ := io.ReadFull(r, hdr)
	l.offsets = []int64{0}
	if k < len(hdr) && signedN == 0 {
		// Empty, or a crash while creating it (whatever the bytes: the
		// header is fsynced before the first head is written).
		return 0, size, nil
	}
	if !bytes.Equal(hdr[:k], []byte(recordsHeader)[:k]) {
		return 0, 0, fmt.Errorf("%w: %s is not a sumlog records file", ErrCorrupt, l.records.Name())
	}
	if k < len(hdr) {
		return 0, size, nil // and too few records for latest: the caller says so
	}
	end = int64(k)
	l.offsets[0] = end
	buf := make([]byte, entryHeader+maxRecord)
	for id := int64(0); ; id++ {
		if end == size {
			return end, size, nil
		}
		bad := func(why string) (int64, int64, error) {
			if id < signedN {
				return 0, 0, fmt.Errorf("%w: %s: record %d at offset %d: %s, but the signed tree head in %s covers %d records",
					ErrCorrupt, l.records.Name(), id, end, why, latestName, signedN)
			}
			return end, size, nil
		}
		if size-end < entryHeader {
			return bad("incomplete entry header")
		}
		if _, err := l.records.ReadAt(buf[:entryHeader], end); err != nil {
			return 0, 0, fmt.Errorf("sumlog: %w", err)
		}
		tlen := entryLen(buf)
		if tlen > maxRecord {
			return bad(fmt.Sprintf("entry length %d too large", tlen))
		}
		if size-end < int64(entryHeader+tlen) {
			return bad("incomplete entry")
		}
		e := buf[:entryHeader+tlen]
		if _, err := l.records.ReadAt(e[entryHeader:], end+entryHeader); err != nil {
			return 0, 0, fmt.Errorf("sumlog: %w", err)
		}
		text, err := checkEntry(id, e)
		if err != nil {
			return bad(err.Error())
		}
		m, err := parseRecord(text)
		if err != nil {
			return bad(err.Error())
		}
		if prev, dup := l.index[m]; dup {
			return bad(fmt.Sprintf("second record for %s (first is %d)", m, prev))
		}
		hs, err := tlog.StoredHashes(id, text, hashReader(l.hashAll))
		if err != nil {
			return 0, 0, fmt.Errorf("sumlog: %w", err)
		}
		l.hashAll = append(l.hashAll, hs...)
		l.index[m] = id
		end += int64(len(e))
		l.offsets = append(l.offsets, end)
	}
}

// repairHashes makes the hashes file equal to the hashes recomputed from
// the records: those are the truth, and the file is their durable copy.
// A crash can leave it short (hashes not yet written) or long (hashes of a
// torn record); either way the differing tail is rewritten.
func (l *Log) repairHashes() error {
	fi, err := l.hashes.Stat()
	if err != nil {
		return fmt.Errorf("sumlog: %w", err)
	}
	have := fi.Size() / tlog.HashSize
	want := int64(len(l.hashAll))
	first := min(have, want) // first stored hash to rewrite
	buf := make([]byte, 64<<10)
scan:
	for i := int64(0); i < min(have, want); {
		k := min(int64(len(buf))/tlog.HashSize, min(have, want)-i)
		b := buf[:k*tlog.HashSize]
		if _, err := l.hashes.ReadAt(b, i*tlog.HashSize); err != nil {
			return fmt.Errorf("sumlog: %w", err)
		}
		for j := range k {
			if !bytes.Equal(b[j*tlog.HashSize:(j+1)*tlog.HashSize], l.hashAll[i+j][:]) {
				first = i + j
				break scan
			}
		}
		i += k
	}
	if first == want && fi.Size() == want*tlog.HashSize {
		return nil
	}
	l.recovery.HashesRedone = want - first
	if have > want {
		l.recovery.HashesDropped = have - want
	}
	out := make([]byte, 0, (want-first)*tlog.HashSize)
	for _, h := range l.hashAll[first:] {
		out = append(out, h[:]...)
	}
	if _, err := l.hashes.WriteAt(out, first*tlog.HashSize); err != nil {
		return fmt.Errorf("sumlog: %w", err)
	}
	if err := l.hashes.Truncate(want * tlog.HashSize); err != nil {
		return fmt.Errorf("sumlog: %w", err)
	}
	if err := l.hashes.Sync(); err != nil {
		return fmt.Errorf("sumlog: %w", err)
	}
	return nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
