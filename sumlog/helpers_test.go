package sumlog

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const testName = "sum.corp.example"

type testKey struct {
	skey, vkey string
	signer     note.Signer
	verifier   note.Verifier
}

func newTestKey(t testing.TB, name string) testKey {
	t.Helper()
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	return parseTestKey(t, skey, vkey)
}

func parseTestKey(t testing.TB, skey, vkey string) testKey {
	t.Helper()
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{skey, vkey, s, v}
}

func openTestLog(t testing.TB, dir string, k testKey) *Log {
	t.Helper()
	l, err := Open(dir, k.signer, k.verifier)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// fakeHash is a well-formed h1: hash derived from s.
func fakeHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return "h1:" + base64.StdEncoding.EncodeToString(h[:])
}

// recordFor is a valid record for m; seed varies the hashes, so that two
// seeds give two conflicting records.
func recordFor(m module.Version, seed string) []byte {
	return fmt.Appendf(nil, "%s %s %s\n%s %s/go.mod %s\n",
		m.Path, m.Version, fakeHash(seed+"zip"+m.String()),
		m.Path, m.Version, fakeHash(seed+"mod"+m.String()))
}

// numbered is the k'th module version of the tests that append many.
func numbered(k int) module.Version {
	return module.Version{Path: fmt.Sprintf("corp.example/m%d", k%10), Version: fmt.Sprintf("v1.%d.0", k)}
}

func mustAppend(t testing.TB, l *Log, m module.Version, text []byte) int64 {
	t.Helper()
	id, err := l.Append(context.Background(), m, text)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// verifyAll recomputes the tree from the records the log serves, checks it
// against the log's signed head, and returns the head.
func verifyAll(t testing.TB, l *Log, k testKey) tlog.Tree {
	t.Helper()
	tree, signed, err := l.TreeHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(signed, note.VerifierList(k.verifier))
	if err != nil {
		t.Fatalf("signed head does not verify: %v", err)
	}
	if st, err := tlog.ParseTree([]byte(n.Text)); err != nil || st != tree {
		t.Fatalf("signed head is %v, %v; TreeHead says %v", st, err, tree)
	}
	texts, err := serverOps{l}.ReadRecords(context.Background(), 0, tree.N)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []tlog.Hash
	for i, text := range texts {
		m, err := parseRecord(text)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if id, got, err := l.Lookup(context.Background(), m); err != nil || id != int64(i) || string(got) != string(text) {
			t.Fatalf("Lookup(%v) = %d, %q, %v; want record %d", m, id, got, err, i)
		}
		hs, err := tlog.StoredHashes(int64(i), text, hashReader(hashes))
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	th, err := tlog.TreeHash(tree.N, hashReader(hashes))
	if err != nil {
		t.Fatal(err)
	}
	if th != tree.Hash {
		t.Fatalf("records hash to %v, signed head says %v", th, tree.Hash)
	}
	return tree
}

// checkExtends checks that the log's current tree extends old.
func checkExtends(t testing.TB, l *Log, old tlog.Tree) {
	t.Helper()
	cur, _, err := l.TreeHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if old.N == 0 {
		return
	}
	if old.N > cur.N {
		t.Fatalf("tree shrank from %d to %d", old.N, cur.N)
	}
	p, err := l.ProveTree(cur.N, old.N)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(p, cur.N, cur.Hash, old.N, old.Hash); err != nil {
		t.Fatalf("tree %d does not extend tree %d (%v): %v", cur.N, old.N, old.Hash, err)
	}
}
