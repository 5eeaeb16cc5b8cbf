package sumlog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Append adds text, the go.sum lines of m, to the log and returns its
// record id. text must be exactly "M V h1:…\nM V/go.mod h1:…\n" for m
// (ErrInvalidRecord otherwise).
//
// Append is idempotent: if m already has this text, it returns the existing
// id. If m has a different text, it returns an error wrapping ErrConflict
// that names both texts' hashes; the log never replaces a record.
//
// When Append returns an id, the record and its hashes are fsynced and the
// signed tree head that includes it is persisted: no crash loses it. When
// Append fails while writing, the record may or may not be in the log
// after the next Open (calling Append again with the same text is safe),
// and this Log refuses further appends with ErrBroken.
func (l *Log) Append(ctx context.Context, m module.Version, text []byte) (id int64, err error) {
	if err := checkRecord(m, text); err != nil {
		return -1, err
	}
	select {
	case l.writer <- struct{}{}:
	case <-ctx.Done():
		return -1, module.VersionError(m, ctx.Err())
	}
	defer func() { <-l.writer }()

	if l.broken != nil {
		return -1, module.VersionError(m, fmt.Errorf("%w: %v", ErrBroken, l.broken))
	}
	id, old, err := l.Lookup(ctx, m)
	switch {
	case err == nil && bytes.Equal(old, text):
		return id, nil
	case err == nil:
		oz, om := recordHashes(old)
		nz, nm := recordHashes(text)
		return -1, module.VersionError(m, fmt.Errorf("%w: record %d has %s (go.mod %s), refusing %s (go.mod %s)",
			ErrConflict, id, oz, om, nz, nm))
	case !isNotExist(err):
		return -1, err
	}
	// Last point at which giving up leaves nothing behind.
	if err := ctx.Err(); err != nil {
		return -1, module.VersionError(m, err)
	}
	id, err = l.commit(m, text)
	if err != nil {
		l.broken = err
		return -1, module.VersionError(m, err)
	}
	return id, nil
}

// commit writes record n = tree.N: record and hashes first, fsynced; then
// the signed head, persisted; then, in memory, the record becomes visible.
// The order is the durability contract of Append and the reason no served
// head can ever cover a record that a crash could take back.
func (l *Log) commit(m module.Version, text []byte) (int64, error) {
	n := l.tree.N
	hs, err := tlog.StoredHashes(n, text, hashReader(l.hashAll))
	if err != nil {
		return -1, fmt.Errorf("sumlog: hashing record %d: %w", n, err)
	}
	entry := encodeEntry(n, text)
	off := l.offsets[n]
	if _, err := l.records.WriteAt(entry, off); err != nil {
		return -1, fmt.Errorf("sumlog: writing record %d: %w", n, err)
	}
	hbuf := make([]byte, 0, len(hs)*tlog.HashSize)
	for _, h := range hs {
		hbuf = append(hbuf, h[:]...)
	}
	if _, err := l.hashes.WriteAt(hbuf, int64(len(l.hashAll))*tlog.HashSize); err != nil {
		return -1, fmt.Errorf("sumlog: writing hashes of record %d: %w", n, err)
	}
	if err := l.records.Sync(); err != nil {
		return -1, fmt.Errorf("sumlog: syncing record %d: %w", n, err)
	}
	if err := l.hook("records"); err != nil {
		return -1, err
	}
	if err := l.hashes.Sync(); err != nil {
		return -1, fmt.Errorf("sumlog: syncing hashes of record %d: %w", n, err)
	}
	if err := l.hook("hashes"); err != nil {
		return -1, err
	}

	// Readers only see hashes up to the published tree, so these are
	// invisible until the head below is published.
	l.mu.Lock()
	l.hashAll = append(l.hashAll, hs...)
	l.mu.Unlock()
	th, err := tlog.TreeHash(n+1, hashReader(l.hashAll))
	if err != nil {
		return -1, fmt.Errorf("sumlog: tree hash at %d: %w", n+1, err)
	}
	tree := tlog.Tree{N: n + 1, Hash: th}
	signed, err := signTree(tree, l.signer)
	if err != nil {
		return -1, err
	}
	if err := writeLatest(l.dir, signed); err != nil {
		return -1, err
	}
	if err := l.hook("latest"); err != nil {
		return -1, err
	}

	l.mu.Lock()
	l.offsets = append(l.offsets, off+int64(len(entry)))
	l.index[m] = n
	l.tree = tree
	l.signed = signed
	l.mu.Unlock()
	return n, nil
}

func (l *Log) hook(step string) error {
	if l.testHookAfter == nil {
		return nil
	}
	return l.testHookAfter(step)
}

func signTree(tree tlog.Tree, signer note.Signer) ([]byte, error) {
	signed, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(tree))}, signer)
	if err != nil {
		return nil, fmt.Errorf("sumlog: signing tree of size %d: %w", tree.N, err)
	}
	return signed, nil
}

const (
	latestName    = "latest"
	latestTmpName = "latest.tmp"
)

// writeLatest replaces dir/latest with signed durably: written and fsynced
// under a temporary name, renamed, and the rename fsynced, so that after a
// crash latest is either the old head or the new one, whole.
func writeLatest(dir string, signed []byte) error {
	tmp := filepath.Join(dir, latestTmpName)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("sumlog: writing signed tree head: %w", err)
	}
	_, err = f.Write(signed)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, latestName))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("sumlog: writing signed tree head: %w", err)
	}
	return nil
}

// syncDir makes renames and file creations in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
