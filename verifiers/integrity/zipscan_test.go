package integrity

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/store/storetest"
)

var scanModule = module.Version{Path: "corp.example/m", Version: "v1.0.0"}

// scanSeeds are module zips as modgate makes them, and as others do
// (stored, not deflated; with a comment; go.sum twice; none).
func scanSeeds(t testing.TB) map[string][]byte {
	const gosum = "golang.org/x/mod v0.20.0/go.mod h1:hTbmBsO62+eylJbnUtE2MGJUyE7QWk4xUqPFrRgJ+7c=\n"
	seeds := map[string][]byte{}
	for name, files := range map[string]map[string]string{
		"with go.sum":  {"go.mod": "module corp.example/m\n", "go.sum": gosum, "a.go": "package a\n", "sub/go.sum": "not this one\n"},
		"without":      {"go.mod": "module corp.example/m\n", "a.go": "package a\n"},
		"empty go.sum": {"go.mod": "module corp.example/m\n", "go.sum": ""},
	} {
		data, err := os.ReadFile(storetest.Zip(t, scanModule, files))
		if err != nil {
			t.Fatal(err)
		}
		seeds[name] = data
	}
	handmade := func(comment string, method uint16, entries ...[2]string) []byte {
		var b bytes.Buffer
		w := zip.NewWriter(&b)
		for _, e := range entries {
			f, err := w.CreateHeader(&zip.FileHeader{Name: e[0], Method: method})
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte(e[1]))
		}
		w.SetComment(comment)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	prefix := scanModule.String() + "/"
	seeds["stored"] = handmade("", zip.Store, [2]string{prefix + "go.mod", "module corp.example/m\n"}, [2]string{prefix + "go.sum", gosum})
	seeds["comment"] = handmade(strings.Repeat("c", 300), zip.Deflate, [2]string{prefix + "go.sum", gosum})
	seeds["twice"] = handmade("", zip.Deflate, [2]string{prefix + "go.sum", gosum}, [2]string{prefix + "go.sum", "other\n"})
	seeds["large"] = handmade("", zip.Deflate, [2]string{prefix + "go.sum", strings.Repeat(gosum, 2000)})
	return seeds
}

// TestGoSumInZip: the same answers as archive/zip, and the scan itself
// answers (without archive/zip) for every zip modgate makes.
func TestGoSumInZip(t *testing.T) {
	for name, data := range scanSeeds(t) {
		want, werr := GoSumFromZip(bytes.NewReader(data), int64(len(data)), scanModule)
		got, err := goSumInZip(data, scanModule)
		if !bytes.Equal(got, want) || (err == nil) != (werr == nil) {
			t.Errorf("%s: goSumInZip = %q, %v; archive/zip %q, %v", name, got, err, want, werr)
		}
		_, ok := scanGoSum(data, scanModule.String()+"/go.sum")
		if wantOK := name != "twice"; ok != wantOK {
			t.Errorf("%s: the scan answered %v, want %v", name, ok, wantOK)
		}
	}
	// Truncated or damaged zips are left to archive/zip.
	data := scanSeeds(t)["with go.sum"]
	for i := range len(data) {
		if _, ok := scanGoSum(data[:i], scanModule.String()+"/go.sum"); ok {
			// Only a prefix that happens to be a whole zip could answer.
			if _, err := zip.NewReader(bytes.NewReader(data[:i]), int64(i)); err != nil {
				t.Fatalf("the scan answered for the first %d bytes, which archive/zip refuses: %v", i, err)
			}
		}
	}
}

// FuzzGoSumInZip holds the scan to archive/zip: whenever it answers on its
// own, archive/zip reads the zip and finds the same go.sum.
func FuzzGoSumInZip(f *testing.F) {
	for _, data := range scanSeeds(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := scanGoSum(data, scanModule.String()+"/go.sum")
		if !ok {
			return
		}
		want, err := GoSumFromZip(bytes.NewReader(data), int64(len(data)), scanModule)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("scan = %q; archive/zip = %q, %v", got, want, err)
		}
	})
}

// BenchmarkGoSumInZip compares the scan with archive/zip on a zip of n
// files.
func BenchmarkGoSumInZip(b *testing.B) {
	for _, n := range []int{4, 125, 1000} {
		files := map[string]string{"go.mod": "module corp.example/m\n", "go.sum": "golang.org/x/mod v0.20.0/go.mod h1:hTbmBsO62+eylJbnUtE2MGJUyE7QWk4xUqPFrRgJ+7c=\n"}
		for i := range n - 2 {
			files[fmt.Sprintf("pkg%d/f%d.go", i%10, i)] = fmt.Sprintf("package pkg%d\n", i%10)
		}
		data, err := os.ReadFile(storetest.Zip(b, scanModule, files))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("files=%d/scan", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := goSumInZip(data, scanModule); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("files=%d/archive-zip", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := GoSumFromZip(bytes.NewReader(data), int64(len(data)), scanModule); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
