package rawhash

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
)

// TestReadFile: files smaller than, as large as, and larger than the
// buffer are read whole; a missing one is an error naming it.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	buf := make([]byte, 16)
	for _, size := range []int{0, 5, 16, 17, 1000} {
		data := bytes.Repeat([]byte{byte(size)}, size)
		name := filepath.Join(dir, "f")
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		n, err := readFile(name, &buf)
		if err != nil || sha256.Sum256(buf[:n]) != sha256.Sum256(data) {
			t.Errorf("size %d: read %d bytes, %v", size, n, err)
		}
	}
	if _, err := Files([]string{filepath.Join(dir, "f"), filepath.Join(dir, "missing")}, 2); err == nil {
		t.Error("Files with a missing file: no error")
	}
}
