package upstream

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/verifiers/depsum"
)

// TestPublicProxy fetches real public modules from the proxies `go env
// GOPROXY` names and proves them against the checksum database `go env
// GOSUMDB` names, reached as the go command reaches it: golang.org/x/text
// v0.14.0 (a 9 MB zip with a go.mod) and github.com/pmezard/go-difflib
// v1.0.0 (a module without go.mod). It skips when they cannot be reached,
// and with -short.
func TestPublicProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the network; skipped with -short")
	}
	out, err := exec.Command("go", "env", "GOPROXY", "GOSUMDB").Output()
	if err != nil {
		t.Skipf("go env: %v", err)
	}
	env := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(env) != 2 {
		t.Fatalf("go env printed %q", out)
	}
	goproxy, gosumdb := env[0], env[1]
	if gosumdb == "off" {
		t.Skip("GOSUMDB=off")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts, err := depsum.Discover(ctx, goproxy, gosumdb, &http.Client{Timeout: 15 * time.Second})
	if depsum.IsTransient(err) {
		t.Skipf("checksum database unreachable (GOPROXY=%s GOSUMDB=%s): %v", goproxy, gosumdb, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	opts.CacheDir, opts.Timeout = t.TempDir(), 15*time.Second
	db, err := depsum.NewSumDB(opts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(Options{GOPROXY: goproxy, DB: db, TempDir: t.TempDir(), Timeout: 15 * time.Second, Retries: 1, Logger: discard})
	if err != nil {
		if strings.Contains(err.Error(), "no http or https proxy") {
			t.Skipf("GOPROXY=%s: %v", goproxy, err)
		}
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m                module.Version
		zipHash, modHash string // from sum.golang.org
	}{
		{module.Version{Path: "golang.org/x/text", Version: "v0.14.0"},
			"h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=", "h1:18ZOQIKpY8NJVqYksKHtTdi31H5itFRjB5/qKTNYzSU="},
		{module.Version{Path: "github.com/pmezard/go-difflib", Version: "v1.0.0"},
			"h1:4DBwDE0NGyQoBHbLQYPwSUPoCMWR5BEzIk/f1lZbAQM=", "h1:iKH77koFhYxTK1pcRnkKkqfTogsbg7gZNVY4sRDYZ/4="},
	} {
		start := time.Now()
		mod, err := f.Fetch(ctx, tc.m)
		if IsTransient(err) {
			t.Skipf("upstream unreachable (GOPROXY=%s): %v", goproxy, err)
		}
		if errors.Is(err, ErrRefused) {
			t.Skipf("the proxy refuses %s here (GOPROXY=%s): %v", tc.m, goproxy, err)
		}
		if err != nil {
			t.Fatal(err)
		}
		if mod.ZipHash != tc.zipHash || mod.ModHash != tc.modHash {
			t.Errorf("%s: hashes %s %s, want %s %s", tc.m, mod.ZipHash, mod.ModHash, tc.zipHash, tc.modHash)
		}
		t.Logf("%s from %s, proven by %s at %s, in %v: %q", tc.m, mod.Proxy, opts.Name, opts.URL, time.Since(start).Round(time.Millisecond), mod.DBLines)
		mod.Remove()
	}

	list, err := f.List(ctx, "golang.org/x/text")
	if IsTransient(err) {
		t.Skipf("upstream unreachable: %v", err)
	}
	if err != nil || !slices.Contains(list, "v0.14.0") {
		t.Errorf("List: %d versions, %v", len(list), err)
	}
	// Not every proxy answers @latest (the go command asks for it only
	// when the list is empty): not found is a fine answer.
	latest, err := f.Latest(ctx, "golang.org/x/text")
	if err != nil && !IsNotFound(err) || err == nil && !strings.HasPrefix(latest.Version, "v0.") {
		t.Errorf("Latest: %+v, %v", latest, err)
	}
	t.Logf("List: %d versions; Latest: %s %v", len(list), latest.Version, err)
}
