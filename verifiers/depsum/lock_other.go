//go:build !unix

package depsum

// lockFile is a no-op where flock is not available: the compare-and-swap of
// the latest tree head is then atomic within one process only, so processes
// must not share a cache directory there.
func lockFile(path string) (unlock func(), err error) {
	return func() {}, nil
}
