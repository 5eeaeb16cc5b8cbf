package server

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/store/storetest"
	"golang.org/x/mod/module"
)

// discard is a ResponseWriter that keeps nothing, so that a benchmark
// measures the handler rather than a recorder's buffer.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

func benchServe(b *testing.B, h http.Handler, path string, size int64) {
	r := httptest.NewRequest("GET", path, nil)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		w := &discard{h: make(http.Header)}
		h.ServeHTTP(w, r)
		if w.code != 0 && w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

func BenchmarkServeInfo(b *testing.B) {
	f := newFixture(b)
	v := f.versions[module.Version{Path: "example.com/hello", Version: "v1.1.0"}]
	benchServe(b, NewProxy(f.store, nil), "/example.com/hello/@v/v1.1.0.info", int64(len(v.Info)))
}

// BenchmarkServeZip serves a 1 MiB module zip.
func BenchmarkServeZip(b *testing.B) {
	d, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	m := module.Version{Path: "example.com/big", Version: "v1.0.0"}
	data := make([]byte, 1<<20)
	rng := rand.NewChaCha8([32]byte{})
	rng.Read(data)
	v := storetest.Version(b, m, map[string]string{"data.bin": string(data)})
	if _, err := d.Publish(context.Background(), v); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(v.ZipFile)
	if err != nil {
		b.Fatal(err)
	}
	benchServe(b, NewProxy(d, nil), "/example.com/big/@v/v1.0.0.zip", fi.Size())
}
