package memo

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
)

func TestSet(t *testing.T) {
	var s Set
	s.Max = 2
	calls := 0
	ok := func() error { calls++; return nil }
	bad := func() error { calls++; return errors.New("no") }
	for range 2 {
		if err := s.Verify(ok, []byte("a"), []byte("b")); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Errorf("a verified %d times, want once", calls)
	}
	// Parts are length-prefixed: "ab" is not "a" + "b".
	if s.Has(Key([]byte("ab"))) || !s.Has(Key([]byte("a"), []byte("b"))) {
		t.Error("keys of different part lists collide")
	}
	if err := s.Verify(bad, []byte("c")); err == nil || s.Has(Key([]byte("c"))) {
		t.Errorf("a failed verification: %v, remembered %v", err, s.Has(Key([]byte("c"))))
	}
	s.Add(Key([]byte("d")))
	s.Add(Key([]byte("e"))) // over Max: starts again
	if s.Has(Key([]byte("a"), []byte("b"))) || !s.Has(Key([]byte("e"))) {
		t.Error("the set did not start again at Max")
	}
	var none *Set
	calls = 0
	none.Verify(ok)
	none.Verify(ok)
	if calls != 2 || none.Has(Key()) {
		t.Error("a nil Set remembered")
	}
}

// TestPeek: a Peek answers from the Set but never adds to it.
func TestPeek(t *testing.T) {
	var s Set
	calls := 0
	ok := func() error { calls++; return nil }
	p := s.Peek()
	p.Verify(ok, []byte("a"))
	p.Verify(ok, []byte("a"))
	if calls != 2 || s.Len() != 0 {
		t.Errorf("through a Peek: %d checks, %d remembered; want 2 and 0", calls, s.Len())
	}
	s.Verify(ok, []byte("a"))
	p.Verify(ok, []byte("a"))
	if calls != 3 {
		t.Errorf("a Peek ran a check the Set remembers (%d checks, want 3)", calls)
	}
	var none *Set
	none.Peek().Verify(ok)
	if calls != 4 {
		t.Error("a nil Set's Peek did not run the check")
	}
}

// TestGrow: Grow raises the bound, never lowers it.
func TestGrow(t *testing.T) {
	var s Set
	s.Max = 2
	s.Grow(3)
	for _, k := range []string{"a", "b", "c"} {
		s.Add(Key([]byte(k)))
	}
	if s.Len() != 3 {
		t.Errorf("grown to 3: holds %d", s.Len())
	}
	s.Grow(1)
	s.Add(Key([]byte("d"))) // over the bound of 3: starts again
	if s.Len() != 1 {
		t.Errorf("Grow(1) lowered or dropped the bound: holds %d", s.Len())
	}
	var zero Set
	zero.Grow(DefaultMax - 1)
	if zero.Max != 0 {
		t.Errorf("Grow below DefaultMax changed a zero Set's Max to %d", zero.Max)
	}
	zero.Grow(DefaultMax + 1)
	if zero.Max != DefaultMax+1 {
		t.Errorf("Max = %d, want %d", zero.Max, DefaultMax+1)
	}
	var none *Set
	none.Grow(10) // no panic
}

// TestKey: the key is the same whether its parts are hashed from the stack
// or streamed, and parts are length-prefixed.
func TestKey(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 2000)
	h := sha256.New()
	for _, p := range [][]byte{[]byte("a"), long} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	if got := Key([]byte("a"), long); !bytes.Equal(got[:], h.Sum(nil)) {
		t.Error("streamed key differs from its definition")
	}
	short := Key([]byte("a"), []byte("bc"))
	h.Reset()
	for _, p := range []string{"a", "bc"} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	if !bytes.Equal(short[:], h.Sum(nil)) {
		t.Error("key from the stack differs from its definition")
	}
	if Key([]byte("ab"), []byte("c")) == short {
		t.Error("parts are not length-prefixed")
	}
}

// TestMap: values by key, the bound, a start again when full.
func TestMap(t *testing.T) {
	var m Map[string, int]
	m.Max = 2
	m.Add("a", 1)
	m.Add("b", 2)
	if v, ok := m.Get("b"); !ok || v != 2 || m.Len() != 2 {
		t.Fatalf("b = %d, %v; len %d", v, ok, m.Len())
	}
	m.Add("c", 3) // full: starts again
	if _, ok := m.Get("a"); ok || m.Len() != 1 {
		t.Errorf("did not start again at Max: len %d", m.Len())
	}
}
