package webhook

import (
	"context"
	"sync"
	"time"
)

// MemoryReplays is an in-memory Replays for tests and single-process use.
// Its records do not survive a restart.
type MemoryReplays struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	seen    map[memoryKey]time.Time
	inserts int
}

type memoryKey struct {
	p   Provider
	key string
}

// NewMemoryReplays returns an empty MemoryReplays whose records expire after
// ttl; zero keeps them forever.
func NewMemoryReplays(ttl time.Duration) *MemoryReplays {
	return &MemoryReplays{ttl: ttl, now: time.Now, seen: make(map[memoryKey]time.Time)}
}

// Seen implements Replays.
func (m *MemoryReplays) Seen(ctx context.Context, p Provider, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := m.now()
	k := memoryKey{p, key}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.seen[k]; ok && !m.expired(t, now) {
		return true, nil
	}
	m.seen[k] = now
	if m.inserts++; m.ttl > 0 && m.inserts%1024 == 0 {
		for k, t := range m.seen {
			if m.expired(t, now) {
				delete(m.seen, k)
			}
		}
	}
	return false, nil
}

// Has implements Replays.
func (m *MemoryReplays) Has(ctx context.Context, p Provider, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.seen[memoryKey{p, key}]
	return ok && !m.expired(t, m.now()), nil
}

// Forget implements Replays.
func (m *MemoryReplays) Forget(ctx context.Context, p Provider, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.seen, memoryKey{p, key})
	return nil
}

func (m *MemoryReplays) expired(t, now time.Time) bool {
	return m.ttl > 0 && now.Sub(t) >= m.ttl
}
