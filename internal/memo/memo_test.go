package memo

import (
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
	s := Set{Max: 2}
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
