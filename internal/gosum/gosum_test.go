package gosum

import "testing"

// The hash sum.golang.org records for a go.mod of "module PATH\n", the
// go.mod the go command uses for a module without one: the
// github.com/pmezard/go-difflib v1.0.0/go.mod line.
func TestModHash(t *testing.T) {
	got := ModHash([]byte("module github.com/pmezard/go-difflib\n"))
	if want := "h1:iKH77koFhYxTK1pcRnkKkqfTogsbg7gZNVY4sRDYZ/4="; got != want {
		t.Errorf("ModHash = %s, want %s", got, want)
	}
}
