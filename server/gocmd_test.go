package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/store/storetest"
	"golang.org/x/mod/module"
)

// goTest runs the real go command with the proxy as its only source, in a
// fresh main module with its own module cache.
type goTest struct {
	t     *testing.T
	gobin string
	dir   string
	env   []string
}

func newGoTest(t *testing.T, proxyURL string) *goTest {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "main")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module test\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &goTest{t: t, gobin: gobin, dir: dir, env: []string{
		"GOPROXY=" + proxyURL,
		"GONOSUMDB=example.com/hello,example.com/Azure/hello",
		"GOPRIVATE=", "GONOPROXY=", "GOINSECURE=",
		"GOFLAGS=-mod=mod -modcacherw",
		"GOMODCACHE=" + filepath.Join(tmp, "modcache"),
		"GOPATH=" + filepath.Join(tmp, "gopath"),
		"GOTOOLCHAIN=local", "GOWORK=off", "GOENV=off",
	}}
}

func (g *goTest) run(args ...string) (stdout string, err error) {
	g.t.Helper()
	cmd := exec.Command(g.gobin, args...)
	cmd.Dir = g.dir
	cmd.Env = append(cmd.Environ(), g.env...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err = cmd.Run()
	if err != nil {
		return out.String() + stderr.String(), err
	}
	return out.String(), nil
}

func (g *goTest) must(args ...string) string {
	g.t.Helper()
	out, err := g.run(args...)
	if err != nil {
		g.t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestGoCommand(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(NewProxy(f.store, nil))
	defer srv.Close()
	g := newGoTest(t, srv.URL)

	t.Run("mod download", func(t *testing.T) {
		for m, v := range f.versions {
			out := g.must("mod", "download", "-json", m.String())
			var got struct{ Path, Version, Sum, GoModSum, Error string }
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if got.Error != "" || got.Path != m.Path || got.Version != m.Version {
				t.Errorf("go mod download %s = %+v", m, got)
			}
			if got.Sum != v.ZipHash || got.GoModSum != storetest.ModHash(t, v.Mod) {
				t.Errorf("go mod download %s: Sum %s GoModSum %s; store has %s %s",
					m, got.Sum, got.GoModSum, v.ZipHash, storetest.ModHash(t, v.Mod))
			}
		}
	})

	t.Run("list versions", func(t *testing.T) {
		out := g.must("list", "-m", "-versions", "example.com/hello")
		if want := "example.com/hello v1.0.0 v1.1.0 v1.2.0-rc.1\n"; out != want {
			t.Errorf("go list -m -versions = %q, want %q", out, want)
		}
		out = g.must("list", "-m", "-versions", "example.com/Azure/hello")
		if want := "example.com/Azure/hello v1.0.0-RC1\n"; out != want {
			t.Errorf("go list -m -versions = %q, want %q", out, want)
		}
	})

	t.Run("get latest", func(t *testing.T) {
		g.must("get", "example.com/hello@latest")
		gomod, _ := os.ReadFile(filepath.Join(g.dir, "go.mod"))
		if !strings.Contains(string(gomod), "example.com/hello v1.1.0") {
			t.Errorf("go get @latest did not pick v1.1.0:\n%s", gomod)
		}
		gosum, _ := os.ReadFile(filepath.Join(g.dir, "go.sum"))
		v := f.versions[module.Version{Path: "example.com/hello", Version: "v1.1.0"}]
		for _, line := range []string{
			"example.com/hello v1.1.0 " + v.ZipHash,
			"example.com/hello v1.1.0/go.mod " + storetest.ModHash(t, v.Mod),
		} {
			if !strings.Contains(string(gosum), line+"\n") {
				t.Errorf("go.sum lacks %q:\n%s", line, gosum)
			}
		}
		// For a package path the go command asks for each path prefix as a
		// module; that works only because unknown modules are 404.
		g.must("get", "example.com/Azure/hello/sub@latest")
		gomod, _ = os.ReadFile(filepath.Join(g.dir, "go.mod"))
		if !strings.Contains(string(gomod), "example.com/Azure/hello v1.0.0-RC1") {
			t.Errorf("go get of a package did not pick its module:\n%s", gomod)
		}
	})

	t.Run("not published", func(t *testing.T) {
		for _, q := range []string{"example.com/hello@v1.9.0", "example.com/hello@v1.3.0", "example.com/nothing@latest"} {
			out, err := g.run("mod", "download", q)
			if err == nil {
				t.Errorf("go mod download %s succeeded", q)
			}
			// The go command shows a text/plain 404 body to its user.
			if !strings.Contains(out, "server response") || !strings.Contains(out, "not found") {
				t.Errorf("go mod download %s: %s", q, out)
			}
		}
	})
}

// TestGoCommandAllQuarantined: the go command asked for a module whose
// every version is quarantined, or a package in it, says why: the list is
// a 403 with the reason (it was a 404, "has no published versions", which
// the go command showed for the package's longest candidate module path
// instead). Restored, it is served again.
func TestGoCommandAllQuarantined(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(NewProxy(f.store, nil))
	defer srv.Close()
	g := newGoTest(t, srv.URL)

	m := module.Version{Path: "example.com/Azure/hello", Version: "v1.0.0-RC1"}
	ctx := context.Background()
	if err := f.store.SetQuarantine(ctx, m, store.Quarantine{Reason: "tag-signature: key revoked"}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"get", "example.com/Azure/hello@latest"},
		{"get", "example.com/Azure/hello/sub@latest"},
		{"list", "-m", "-versions", "example.com/Azure/hello"},
		{"mod", "download", m.String()},
	} {
		out, err := g.run(args...)
		if err == nil || !strings.Contains(out, "403 Forbidden") || !strings.Contains(out, "quarantined by modgate") || !strings.Contains(out, "key revoked") {
			t.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if _, err := f.store.ClearQuarantine(ctx, m); err != nil {
		t.Fatal(err)
	}
	g.must("get", "example.com/Azure/hello/sub@latest")
}
