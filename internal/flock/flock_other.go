//go:build !unix

// Package flock takes exclusive advisory locks on files, between
// processes.
package flock

// Lock is a no-op where flock is not available: what it guards is then
// exclusive within one process only, so processes must not share the
// directory there.
func Lock(path string) (unlock func(), err error) {
	return func() {}, nil
}
