package sbom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anchore/syft/syft/format/common/spdxhelpers"
	"golang.org/x/mod/module"
)

// BenchmarkGenerate measures Generate per module after start-up ("all"),
// and the part of it that is syft ("syft": CreateSBOM and its SPDX model,
// on the files already extracted). The rest is ours: checking the zip,
// hashing it, extracting go.mod and go.sum, shaping and encoding.
func BenchmarkGenerate(b *testing.B) {
	g := generator(b)
	if _, err := g.scanner(); err != nil { // start-up, measured by BenchmarkNewGenerator
		b.Fatal(err)
	}
	for _, mv := range []module.Version{modX, modNATS, modNet, modSyft} {
		m := cachedModule(b, mv)
		name := strings.ReplaceAll(mv.Path, "/", "-")
		b.Run(name+"/all", func(b *testing.B) {
			for b.Loop() {
				if _, err := g.Generate(context.Background(), m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/syft", func(b *testing.B) {
			files, err := readZip(mv, m.ZipFile)
			if err != nil {
				b.Fatal(err)
			}
			dir := b.TempDir()
			for n, data := range files {
				if err := os.WriteFile(filepath.Join(dir, n), data, 0o444); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				s, err := g.catalog(context.Background(), dir, m)
				if err != nil {
					b.Fatal(err)
				}
				spdxhelpers.ToFormatModel(*s)
			}
		})
	}
}

// BenchmarkNewGenerator is the start-up cost: syft's configuration and its
// license scanner (which NewGenerator builds in the background).
func BenchmarkNewGenerator(b *testing.B) {
	for b.Loop() {
		g, err := NewGenerator("modgate", "v0")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := g.scanner(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignBlob(b *testing.B) {
	k := keys(b)
	for _, mv := range []module.Version{modNet, modSyft} {
		doc := generate(b, cachedModule(b, mv))
		b.Run(strings.ReplaceAll(mv.Path, "/", "-"), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if _, _, err := k.signer.SignBlob(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSignSummary(b *testing.B) {
	k := keys(b)
	sum := sha256.Sum256([]byte("zip"))
	s := testSummary(hex.EncodeToString(sum[:]))
	for b.Loop() {
		if _, err := k.signer.SignSummary(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadSigner is the once-per-process cost of decrypting the key.
func BenchmarkLoadSigner(b *testing.B) {
	k := keys(b)
	for b.Loop() {
		if _, err := LoadSigner(k.privPEM, testPassword); err != nil {
			b.Fatal(err)
		}
	}
}
