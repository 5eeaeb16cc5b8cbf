// Package rawhash is the floor of reading files and hashing them with
// SHA-256: what the re-verification benchmarks compare modgate with. It
// reads as cheaply as Go can: each worker reuses one buffer, and opens,
// reads and closes with bare system calls (no poller, no fstat, no io.Copy
// buffer), then sha256.Sum256.
package rawhash

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"
)

// Files reads and hashes every file of paths once, with workers
// goroutines taking them in turn, and returns how long that took.
func Files(paths []string, workers int) (time.Duration, error) {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	start := time.Now()
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for {
				i := int(next.Add(1)) - 1
				if i >= len(paths) {
					return
				}
				n, err := readFile(paths[i], &buf)
				if err != nil {
					errOnce.Do(func() { first = err })
					return
				}
				sink.Store(sha256.Sum256(buf[:n]))
			}
		}()
	}
	wg.Wait()
	return time.Since(start), first
}

// sink keeps the hashes from being optimized away.
var sink atomic.Value
