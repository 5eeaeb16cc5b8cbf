package depsum

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
)

// TestPublicSumDB checks a real go.mod and go.sum against the real public
// checksum database, reached as `go env GOPROXY GOSUMDB` says: the go.mod of
// golang.org/x/mod v0.42.0 (from the module cache) and this repository's
// go.sum, which holds the lines for its requirement. It skips when the
// database cannot be reached.
func TestPublicSumDB(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the network; skipped with -short")
	}
	out, err := exec.Command("go", "env", "GOPROXY", "GOSUMDB", "GOMODCACHE").Output()
	if err != nil {
		t.Skipf("go env: %v", err)
	}
	env := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(env) != 3 {
		t.Fatalf("go env printed %q", out)
	}
	goproxy, gosumdb, modcache := env[0], env[1], env[2]
	if gosumdb == "off" {
		t.Skip("GOSUMDB=off")
	}
	gomod, err := os.ReadFile(filepath.Join(modcache, "cache/download/golang.org/x/mod/@v/v0.42.0.mod"))
	if err != nil {
		t.Skipf("x/mod's go.mod is not in the module cache: %v", err)
	}
	// The go.sum lines of x/mod v0.42.0's requirements, as a go.sum holds them.
	gosum, err := os.ReadFile("testdata/x-mod-v0.42.0.sum")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	opts, err := Discover(ctx, goproxy, gosumdb, &http.Client{Timeout: 10 * time.Second})
	if IsTransient(err) {
		t.Skipf("public checksum database unreachable (GOPROXY=%s GOSUMDB=%s): %v", goproxy, gosumdb, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	opts.CacheDir, opts.Timeout = t.TempDir(), 10*time.Second
	db, err := NewSumDB(opts)
	if err != nil {
		t.Fatal(err)
	}
	c := &Checker{Public: db}
	m := module.Version{Path: "golang.org/x/mod", Version: "v0.42.0"}
	start := time.Now()
	rep, err := c.Check(ctx, m, gomod, gosum)
	if IsTransient(err) {
		t.Skipf("public checksum database unreachable at %s: %v", opts.URL, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d go.sum lines verified against %s at %s in %v", len(rep.Checked), opts.Name, opts.URL, time.Since(start).Round(time.Millisecond))

	// The same go.sum with one hash changed: a mismatch naming both hashes.
	real := "h1:k4Xc/1Om9jwkBJBo4NVLMSARBoWtK10mx+W5BnXCeAI=" // golang.org/x/tools v0.51.0
	if !strings.Contains(string(gosum), "golang.org/x/tools v0.51.0 "+real) {
		t.Skip("go.sum no longer requires golang.org/x/tools v0.51.0")
	}
	fake := h1("not x/tools")
	_, err = c.Check(ctx, m, gomod, []byte(strings.Replace(string(gosum), real, fake, 1)))
	if IsTransient(err) {
		t.Skipf("public checksum database unreachable: %v", err)
	}
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), real) || !strings.Contains(err.Error(), fake) {
		t.Fatalf("want a mismatch naming both hashes, got %v", err)
	}
	t.Logf("tampered: %v", err)
}
