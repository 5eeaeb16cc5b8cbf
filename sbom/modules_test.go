package sbom

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// Real modules from the module cache, zipped as the pipeline zips a tag.
var (
	modX        = module.Version{Path: "golang.org/x/mod", Version: "v0.42.0"}
	modNATS     = module.Version{Path: "github.com/nats-io/nats-server/v2", Version: "v2.15.2"}
	modNet      = module.Version{Path: "golang.org/x/net", Version: "v0.61.0"} // ~830 files
	modSyft     = module.Version{Path: "github.com/anchore/syft", Version: "v1.57.0"}
	realModules = []module.Version{modX, modNATS, modNet, modSyft}
)

// tagTime stands for the tag time of every test module.
var tagTime = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

var (
	zipCacheMu  sync.Mutex
	zipCache    = map[module.Version]Module{}
	zipCacheDir string
)

// TestMain removes the zips cached for the whole test binary.
func TestMain(m *testing.M) {
	code := m.Run()
	if zipCacheDir != "" {
		os.RemoveAll(zipCacheDir)
	}
	os.Exit(code)
}

// cachedModule zips mv from the module cache (once per test binary) and
// returns it as Generate wants it, or skips the test if it is not there.
func cachedModule(tb testing.TB, mv module.Version) Module {
	tb.Helper()
	zipCacheMu.Lock()
	defer zipCacheMu.Unlock()
	if m, ok := zipCache[mv]; ok {
		return m
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		tb.Fatalf("go env GOMODCACHE: %v", err)
	}
	escPath, _ := module.EscapePath(mv.Path)
	src := filepath.Join(strings.TrimSpace(string(out)), escPath+"@"+mv.Version)
	if _, err := os.Stat(src); err != nil {
		tb.Skipf("%s is not in the module cache (go mod download %s@%s)", mv.Path, mv.Path, mv.Version)
	}
	if zipCacheDir == "" {
		if zipCacheDir, err = os.MkdirTemp("", "modgate-sbom-test-"); err != nil {
			tb.Fatal(err)
		}
	}
	// The module cache is read-only: work on a copy.
	dir := filepath.Join(zipCacheDir, escPath+"@"+mv.Version)
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		tb.Fatalf("copying %s: %v", src, err)
	}
	m := zipDir(tb, dir, mv, filepath.Join(zipCacheDir, strings.ReplaceAll(escPath, "/", "_")+"@"+mv.Version+".zip"))
	zipCache[mv] = m
	return m
}

// zipDir zips dir as module mv into zipFile and hashes it.
func zipDir(tb testing.TB, dir string, mv module.Version, zipFile string) Module {
	tb.Helper()
	f, err := os.Create(zipFile)
	if err != nil {
		tb.Fatal(err)
	}
	if err := modzip.CreateFromDir(f, mv, dir); err != nil {
		tb.Fatalf("zipping %s: %v", dir, err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	zh, err := dirhash.HashZip(zipFile, dirhash.Hash1)
	if err != nil {
		tb.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil && !os.IsNotExist(err) {
		tb.Fatal(err)
	}
	mh, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gomod)), nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	lics, err := Licenses(zipFile, mv)
	if err != nil {
		tb.Fatal(err)
	}
	return Module{Path: mv.Path, Version: mv.Version, ZipFile: zipFile, ZipHash: zh, ModHash: mh, Time: tagTime, Licenses: lics}
}

// writeModule writes files as a module directory and zips it.
func writeModule(tb testing.TB, mv module.Version, files map[string]string) Module {
	tb.Helper()
	dir := tb.TempDir()
	for name, data := range files {
		name = filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return zipDir(tb, dir, mv, filepath.Join(tb.TempDir(), "m.zip"))
}
