package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSysCalls: the stack-named system calls open, link and rename what
// x/sys/unix would, for names of every length around the stack buffer's,
// and refuse a name with a NUL as it does.
func TestSysCalls(t *testing.T) {
	dir := t.TempDir()
	d, err := openDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, n := range []int{1, 6, 128, 250, 254, 255} {
		base := strings.Repeat("b", n/2)
		suffix := strings.Repeat("s", n-n/2)
		if err := os.WriteFile(filepath.Join(dir, base+suffix), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		fd, err := sysOpenat(d.fd, base, suffix, unix.O_RDONLY)
		if err != nil {
			t.Fatalf("open of a %d-byte name: %v", n, err)
		}
		unix.Close(fd)
		link := strings.Repeat("l", n)
		if err := sysLinkat(d.fd, base+suffix, d.fd, link); err != nil {
			t.Fatalf("link to a %d-byte name: %v", n, err)
		}
		if err := sysRenameat(d.fd, link, "r", strings.Repeat("n", n-1)); err != nil {
			t.Fatalf("rename to a %d-byte name: %v", n, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "r"+strings.Repeat("n", n-1))); err != nil {
			t.Errorf("renamed %d-byte name: %v", n, err)
		}
	}
	if _, err := sysOpenat(d.fd, "a\x00b", "", unix.O_RDONLY); err == nil {
		t.Error("a name with a NUL opened")
	}
	if _, err := sysOpenat(d.fd, "missing", ".zip", unix.O_RDONLY); err != unix.ENOENT {
		t.Errorf("a missing file: %v, want ENOENT", err)
	}
}
