package sumlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// A Log is a checksum database on local disk. It is safe for concurrent
// use: Appends are serialized, and reads (Lookup, TreeHead, proofs, the
// Handler) run concurrently with each other and with an Append, seeing the
// log as of the last Append that returned.
type Log struct {
	dir      string
	signer   note.Signer
	verifier note.Verifier
	lock     *os.File
	records  *os.File
	hashes   *os.File
	recovery Recovery

	// writer is held by Append and Close. Its holder alone writes the files
	// and changes the fields below; it reads them without mu.
	writer chan struct{}
	broken error // first failed write; the files' tails are unknown

	// testHookAfter, when set, runs after each step of an Append; an error
	// stops the Append there, as a crash would.
	testHookAfter func(step string) error

	mu      sync.RWMutex
	closed  bool
	tree    tlog.Tree                // the published tree: durable, signed, in latest
	signed  []byte                   // the signed note of tree, as in latest
	hashAll []tlog.Hash              // stored hashes; past StoredHashCount(tree.N) not yet published
	offsets []int64                  // offsets[i] is where entry i starts; offsets[tree.N] is the end
	index   map[module.Version]int64 // published records only
}

// A Recovery says what Open found and repaired. Apart from Records, all
// zero means the files were as the last Append or Open left them.
type Recovery struct {
	Records        int64 // records in the log after Open
	TornBytes      int64 // bytes of an incomplete last entry dropped from records
	HashesRedone   int64 // stored hashes rewritten from the records
	HashesDropped  int64 // stored hashes past the last record, dropped
	UnsignedTail   int64 // durable records newer than latest, now signed
	CreatedLatest  bool  // latest was missing (a new log, or a crash while creating it)
	RemovedTmpFile bool  // a temporary latest left by a crash was removed
}

// Recovery reports what Open repaired, for the operator's log.
func (l *Log) Recovery() Recovery { return l.recovery }

// view is a consistent snapshot of the published log.
type view struct {
	tree    tlog.Tree
	signed  []byte
	hashes  []tlog.Hash
	offsets []int64
}

var errClosed = fmt.Errorf("sumlog: log is closed: %w", fs.ErrClosed)

func (l *Log) view() (view, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.viewLocked()
}

func (l *Log) viewLocked() (view, error) {
	if l.closed {
		return view{}, errClosed
	}
	n := l.tree.N
	return view{
		tree:    l.tree,
		signed:  l.signed,
		hashes:  l.hashAll[:tlog.StoredHashCount(n)],
		offsets: l.offsets[:n+1],
	}, nil
}

// hashReader reads stored hashes from memory. Indexes past the end are
// fs.ErrNotExist so that a tile beyond the tree is a 404, not a 500.
func hashReader(hashes []tlog.Hash) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < 0 || x >= int64(len(hashes)) {
				return nil, fmt.Errorf("sumlog: stored hash %d not in tree: %w", x, fs.ErrNotExist)
			}
			out[i] = hashes[x]
		}
		return out, nil
	})
}

// readRecords reads records id through id+n-1 with one read, checking each
// entry so that a bit flipped on disk is an error, never a served record.
func (l *Log) readRecords(v view, id, n int64) ([][]byte, error) {
	if id < 0 || n < 0 || id+n > v.tree.N || id+n < id {
		return nil, fmt.Errorf("sumlog: records %d..%d not in tree of size %d: %w", id, id+n-1, v.tree.N, fs.ErrNotExist)
	}
	if n == 0 {
		return nil, nil
	}
	start, end := v.offsets[id], v.offsets[id+n]
	buf := make([]byte, end-start)
	if _, err := l.records.ReadAt(buf, start); err != nil {
		return nil, fmt.Errorf("sumlog: reading records %d..%d: %w", id, id+n-1, err)
	}
	texts := make([][]byte, n)
	for i := range n {
		e := buf[v.offsets[id+i]-start : v.offsets[id+i+1]-start]
		text, err := checkEntry(id+i, e)
		if err != nil {
			return nil, fmt.Errorf("sumlog: %s: record %d: %w", l.records.Name(), id+i, err)
		}
		texts[i] = text
	}
	return texts, nil
}

// Lookup returns the id and text of m's record, or an error wrapping
// fs.ErrNotExist when the log has none.
func (l *Log) Lookup(ctx context.Context, m module.Version) (id int64, text []byte, err error) {
	if err := ctx.Err(); err != nil {
		return -1, nil, err
	}
	l.mu.RLock()
	v, err := l.viewLocked()
	id, ok := l.index[m]
	l.mu.RUnlock()
	if err != nil {
		return -1, nil, err
	}
	if !ok {
		return -1, nil, module.VersionError(m, fmt.Errorf("not in checksum log: %w", fs.ErrNotExist))
	}
	texts, err := l.readRecords(v, id, 1)
	if err != nil {
		return -1, nil, module.VersionError(m, err)
	}
	return id, texts[0], nil
}

// Size returns the number of records in the published tree.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.tree.N
}

// TreeHead returns the published tree and its signed note, the same bytes
// that /latest serves and that latest holds on disk.
func (l *Log) TreeHead(ctx context.Context) (tlog.Tree, []byte, error) {
	if err := ctx.Err(); err != nil {
		return tlog.Tree{}, nil, err
	}
	v, err := l.view()
	if err != nil {
		return tlog.Tree{}, nil, err
	}
	return v.tree, bytes.Clone(v.signed), nil
}

// ProveRecord proves that record id is in the tree of size t, which must
// not be larger than the published tree.
func (l *Log) ProveRecord(t, id int64) (tlog.RecordProof, error) {
	v, err := l.view()
	if err != nil {
		return nil, err
	}
	if t < 1 || t > v.tree.N || id < 0 || id >= t {
		return nil, fmt.Errorf("sumlog: cannot prove record %d in tree of size %d (log has %d records): %w", id, t, v.tree.N, fs.ErrNotExist)
	}
	return tlog.ProveRecord(t, id, hashReader(v.hashes))
}

// ProveTree proves that the tree of size n is a prefix of the tree of size
// t, which must not be larger than the published tree.
func (l *Log) ProveTree(t, n int64) (tlog.TreeProof, error) {
	v, err := l.view()
	if err != nil {
		return nil, err
	}
	if n < 1 || n > t || t > v.tree.N {
		return nil, fmt.Errorf("sumlog: cannot prove tree %d is a prefix of tree %d (log has %d records): %w", n, t, v.tree.N, fs.ErrNotExist)
	}
	return tlog.ProveTree(t, n, hashReader(v.hashes))
}

// Close waits for an Append in progress, then releases the files and the
// directory lock. Reads after Close fail; a second Close does nothing.
func (l *Log) Close() error {
	l.writer <- struct{}{}
	defer func() { <-l.writer }()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return errors.Join(l.records.Close(), l.hashes.Close(), l.lock.Close())
}
