// Package memo remembers verifications that succeeded, keyed by a SHA-256
// over everything they depended on: the same inputs verify the same way,
// so a hit is as good as verifying again. A Set lives in memory only (one on
// disk could be written by whoever can write what it vouches for).
package memo

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

// DefaultMax bounds a Set whose Max is zero.
const DefaultMax = 1 << 17

// A Set of keys of verifications that succeeded, about 100 bytes an entry;
// when it holds Max, it starts again. The zero Set is ready to use, and a
// nil *Set remembers nothing. Safe for concurrent use.
type Set struct {
	Max int

	mu sync.Mutex
	m  map[[32]byte]struct{}
}

// Key is a SHA-256 over parts, each with its length, so that no two lists
// of parts have the same key.
func Key(parts ...[]byte) [32]byte {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// Has reports whether k was added.
func (s *Set) Has(k [32]byte) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[k]
	return ok
}

// Len is the number of keys remembered.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Add remembers k.
func (s *Set) Add(k [32]byte) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) >= s.bound() {
		s.m = make(map[[32]byte]struct{})
	}
	s.m[k] = struct{}{}
}

// bound is how many keys s holds before it starts again; s.mu is held.
func (s *Set) bound() int {
	if s.Max <= 0 {
		return DefaultMax
	}
	return s.Max
}

// Grow raises the Set's bound to at least n keys (a Set that starts again
// while a run goes round a larger working set would miss on all of it).
func (s *Set) Grow(n int) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bound() < n {
		s.Max = n
	}
}

// Verify runs check unless the same parts verified before, and remembers
// them when check succeeds.
func (s *Set) Verify(check func() error, parts ...[]byte) error {
	k := Key(parts...)
	if s.Has(k) {
		return nil
	}
	if err := check(); err != nil {
		return err
	}
	s.Add(k)
	return nil
}

// Peek is a view of s that consults it but adds nothing: for a check whose
// success is remembered under another key already, so that it does not
// take a second entry.
func (s *Set) Peek() Peek { return Peek{s} }

// A Peek is a Set's view from Set.Peek.
type Peek struct{ s *Set }

// Verify runs check unless the same parts verified before in the Set.
func (p Peek) Verify(check func() error, parts ...[]byte) error {
	if p.s.Has(Key(parts...)) {
		return nil
	}
	return check()
}
