// Package memo remembers verifications that succeeded, keyed by a SHA-256
// over everything they depended on: the same inputs verify the same way,
// so a hit is as good as verifying again (Set), and what was found with
// them (Map). Memos live in memory only (one on disk could be written by
// whoever can write what it vouches for).
package memo

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

// DefaultMax bounds a Map or Set whose Max is zero.
const DefaultMax = 1 << 17

// A Map remembers a value per key; when it holds Max keys, it starts again
// (a memo keeps what a run goes round, and forgetting costs a verification
// again, never a wrong answer). The zero Map is ready to use. Safe for
// concurrent use.
type Map[K comparable, V any] struct {
	Max int

	mu sync.RWMutex
	m  map[K]V
}

// Get returns the value remembered for k.
func (m *Map[K, V]) Get(k K) (V, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.m[k]
	return v, ok
}

// Add remembers v for k.
func (m *Map[K, V]) Add(k K, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= m.bound() {
		m.m = make(map[K]V)
	}
	m.m[k] = v
}

// Len is the number of keys remembered.
func (m *Map[K, V]) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.m)
}

// Grow raises the bound to at least n keys (a memo that starts again while
// a run goes round a larger working set would miss on all of it).
func (m *Map[K, V]) Grow(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bound() < n {
		m.Max = n
	}
}

// bound is how many keys m holds before it starts again; m.mu is held.
func (m *Map[K, V]) bound() int {
	if m.Max <= 0 {
		return DefaultMax
	}
	return m.Max
}

// A Set of keys of verifications that succeeded, about 100 bytes an entry,
// bounded as a Map. The zero Set is ready to use, and a nil *Set remembers
// nothing. Safe for concurrent use.
type Set struct {
	Map[[32]byte, struct{}]
}

// Key is a SHA-256 over parts, each with its length, so that no two lists
// of parts have the same key. Parts of up to a kilobyte in all are hashed
// in one go from the stack: a re-verification run makes a key a version.
func Key(parts ...[]byte) [32]byte {
	n := 0
	for _, p := range parts {
		n += 8 + len(p)
	}
	if n <= 1024 {
		var buf [1024]byte
		b := buf[:0]
		for _, p := range parts {
			b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
			b = append(b, p...)
		}
		return sha256.Sum256(b)
	}
	h := sha256.New()
	var l [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(l[:], uint64(len(p)))
		h.Write(l[:])
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
	_, ok := s.Get(k)
	return ok
}

// Len is the number of keys remembered.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return s.Map.Len()
}

// Add remembers k.
func (s *Set) Add(k [32]byte) {
	if s != nil {
		s.Map.Add(k, struct{}{})
	}
}

// Grow raises the Set's bound to at least n keys.
func (s *Set) Grow(n int) {
	if s != nil {
		s.Map.Grow(n)
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
