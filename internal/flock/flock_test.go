//go:build unix

package flock

import (
	"path/filepath"
	"testing"
	"time"
)

// TestLock: a second Lock of the same file waits until the first is
// released (flock locks belong to open file descriptions, so two in one
// process exclude each other as two processes would).
func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func())
	go func() {
		u, err := Lock(path)
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("second Lock did not wait for the first")
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	select {
	case u := <-got:
		u()
	case <-time.After(5 * time.Second):
		t.Fatal("second Lock not taken after the first was released")
	}
	if _, err := Lock(filepath.Join(t.TempDir(), "missing", "x.lock")); err == nil {
		t.Error("Lock in a missing directory succeeded")
	}
}
