// Package storetest builds module versions for tests of the store and of
// what serves it: real zips made by golang.org/x/mod/zip, hashed as the go
// command hashes them.
package storetest

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/gosum"
	"github.com/modgate/modgate/store"
	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// Time is the commit time in every .info that Version makes.
var Time = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Version returns a store.Version of m whose zip holds files (names relative
// to the module root, slash-separated). The zip is written under
// tb.TempDir(). Without a "go.mod" entry the module gets "module <path>".
func Version(tb testing.TB, m module.Version, files map[string]string) *store.Version {
	tb.Helper()
	if _, ok := files["go.mod"]; !ok {
		files = with(files, "go.mod", "module "+m.Path+"\n")
	}
	zipFile := Zip(tb, m, files)
	h, err := dirhash.HashZip(zipFile, dirhash.Hash1)
	if err != nil {
		tb.Fatal(err)
	}
	return &store.Version{
		Module:  m,
		Info:    Info(m.Version),
		Mod:     []byte(files["go.mod"]),
		ZipFile: zipFile,
		ZipHash: h,
	}
}

// Info returns .info JSON for version.
func Info(version string) []byte {
	return fmt.Appendf(nil, `{"Version":%q,"Time":%q}`, version, Time.Format(time.RFC3339))
}

// Zip writes a module zip of m holding files and returns its path.
func Zip(tb testing.TB, m module.Version, files map[string]string) string {
	tb.Helper()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var zfs []modzip.File
	for _, name := range names {
		zfs = append(zfs, memFile{name: name, data: files[name]})
	}
	var buf bytes.Buffer
	if err := modzip.Create(&buf, m, zfs); err != nil {
		tb.Fatal(err)
	}
	name := filepath.Join(tb.TempDir(), strings.NewReplacer("/", "_", "@", "_").Replace(m.String())+".zip")
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
	return name
}

// ModHash is the go.sum "/go.mod" hash of mod.
func ModHash(tb testing.TB, mod []byte) string {
	tb.Helper()
	return gosum.ModHash(mod)
}

func with(files map[string]string, name, data string) map[string]string {
	out := make(map[string]string, len(files)+1)
	for k, v := range files {
		out[k] = v
	}
	out[name] = data
	return out
}

// memFile is a modzip.File held in memory.
type memFile struct{ name, data string }

func (f memFile) Path() string                 { return f.name }
func (f memFile) Lstat() (os.FileInfo, error)  { return memInfo(f), nil }
func (f memFile) Open() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(f.data)), nil }

type memInfo memFile

func (i memInfo) Name() string       { return filepath.Base(i.name) }
func (i memInfo) Size() int64        { return int64(len(i.data)) }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return Time }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
