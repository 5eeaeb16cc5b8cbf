package sbom

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/cataloging"
	"github.com/anchore/syft/syft/cataloging/pkgcataloging"
	"github.com/anchore/syft/syft/format/common/spdxhelpers"
	"github.com/anchore/syft/syft/pkg/cataloger/golang"
	syftsbom "github.com/anchore/syft/syft/sbom"
	"github.com/anchore/syft/syft/source"
	"github.com/anchore/syft/syft/source/directorysource"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// Generator makes SPDX 2.3 JSON documents for module versions. Make one per
// process and reuse it: syft's license scanner, which syft builds on every
// run unless it finds one on the context, takes about 1.5 s to build. A
// Generator is safe for concurrent use.
type Generator struct {
	tool, version string
	syftVersion   string
	cfg           *syft.CreateSBOMConfig
	// scanner returns a context that carries nothing but syft's license
	// scanner. syft only offers to put a scanner on a context, so every
	// Generate runs with the caller's context for cancellation and this one
	// for values.
	scanner func() (context.Context, error)
}

// NewGenerator returns a Generator that names tool (such as "modgate") at
// version as the creator of its documents, next to the syft version it
// links. It starts building syft's license scanner in the background and
// returns at once; the first Generate waits for the scanner.
func NewGenerator(tool, version string) (*Generator, error) {
	if tool == "" || version == "" {
		return nil, errors.New("sbom: generator needs a tool name and version")
	}
	g := &Generator{
		tool: tool, version: version, syftVersion: linkedSyftVersion(),
		cfg: syftConfig(tool, version),
		scanner: sync.OnceValues(func() (context.Context, error) {
			return syft.SetContextLicenseScanner(context.Background(), cataloging.DefaultLicenseConfig())
		}),
	}
	go g.scanner()
	return g, nil
}

// Module is the module version an SBOM describes: its zip, exactly as it
// will be published, and what the earlier stages proved about it. Generate
// takes ZipHash as given (the zip stage computed it from these bytes), checks
// go.mod against ModHash, and reads everything else from the zip.
type Module struct {
	Path, Version string
	ZipFile       string // the module zip (golang.org/x/mod/zip layout)
	ZipHash       string // "h1:…" of the zip, as in go.sum
	ModHash       string // "h1:…" of its go.mod, as in go.sum ("/go.mod" line)
	// ZipSHA256 is the zip's lowercase hex SHA-256, when the caller has it
	// already; Generate computes it otherwise.
	ZipSHA256 string
	Time      time.Time // tag time: the document's creation time
	// Licenses are the SPDX identifiers of the module's own licenses, from
	// Licenses. Nil means "not determined" (NOASSERTION); empty means none.
	Licenses []string
	// GoMod is the go.mod the go command uses, for a zip that has none (a
	// module from before modules, whose go.mod is "module PATH"); it must
	// hash to ModHash. Ignored when the zip has a go.mod.
	GoMod []byte
}

func (m Module) check() error {
	if err := module.Check(m.Path, m.Version); err != nil {
		return err
	}
	switch {
	case m.ZipFile == "":
		return errors.New("no zip file")
	case !strings.HasPrefix(m.ZipHash, "h1:"):
		return fmt.Errorf("zip hash %q is not an h1: hash", m.ZipHash)
	case !strings.HasPrefix(m.ModHash, "h1:"):
		return fmt.Errorf("go.mod hash %q is not an h1: hash", m.ModHash)
	case m.Time.IsZero():
		return errors.New("no tag time (the SBOM's creation time)")
	}
	return nil
}

// Generate returns the SPDX 2.3 JSON SBOM of m. It checks the zip by the
// rules of golang.org/x/mod/zip, checks its go.mod against m.ModHash,
// extracts the files syft's go.mod cataloger reads (go.mod, go.sum) into a
// temporary directory, and catalogs them with that cataloger only, offline:
// no go command, no module downloads, no license lookups.
//
// The module itself is the described root package; every requirement in its
// go.mod is a package it DEPENDS_ON, with its go.sum hashes. The same m
// always gives the same bytes: the namespace comes from the module, version
// and zip hash, the creation time from the tag.
func (g *Generator) Generate(ctx context.Context, m Module) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, &module.ModuleError{Path: m.Path, Version: m.Version, Err: fmt.Errorf("sbom: %w", err)}
	}
	out, err := g.generate(ctx, m)
	if err != nil {
		return nil, &module.ModuleError{Path: m.Path, Version: m.Version, Err: fmt.Errorf("sbom: %w", err)}
	}
	return out, nil
}

func (g *Generator) generate(ctx context.Context, m Module) ([]byte, error) {
	mv := module.Version{Path: m.Path, Version: m.Version}
	zipSHA256 := m.ZipSHA256
	if zipSHA256 == "" {
		var err error
		if zipSHA256, err = SHA256File(m.ZipFile); err != nil {
			return nil, err
		}
	}
	files, err := readZip(mv, m.ZipFile)
	if err != nil {
		return nil, err
	}
	if _, ok := files["go.mod"]; !ok && m.GoMod != nil {
		// A module from before modules: its zip has no go.mod, and the go
		// command (and the proxy, and go.sum) use "module PATH".
		files["go.mod"] = m.GoMod
	}
	mf, err := parseModFiles(files)
	if err != nil {
		return nil, err
	}
	if mf.file == nil {
		return nil, fmt.Errorf("%s has no go.mod", m.ZipFile)
	}
	if h := mf.goModHash(); h != m.ModHash {
		return nil, fmt.Errorf("go.mod in %s has hash %s, not %s", m.ZipFile, h, m.ModHash)
	}
	tmp, err := os.MkdirTemp("", "modgate-sbom-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o444); err != nil {
			return nil, err
		}
	}
	s, err := g.catalog(ctx, tmp, m)
	if err != nil {
		return nil, err
	}
	keepRequirements(s, mf)
	doc := spdxhelpers.ToFormatModel(*s)
	g.shape(doc, m, zipSHA256, mf)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding SPDX JSON: %w", err)
	}
	return buf.Bytes(), nil
}

// catalogedFiles are the files of the module root that syft's go.mod
// cataloger reads: the only ones extracted for it. Extracting the whole zip
// (golang.org/x/mod/zip.Unzip) and letting syft index every file costs
// hundreds of milliseconds for a module of 800 files and adds nothing to
// the document. Enabling another cataloger means extracting what it reads.
var catalogedFiles = []string{"go.mod", "go.sum"}

// readZip checks the whole zip by the rules of golang.org/x/mod/zip (the
// checks Unzip makes) and returns the contents of catalogedFiles it has.
func readZip(mv module.Version, zipFile string) (map[string][]byte, error) {
	cf, err := modzip.CheckZip(mv, zipFile)
	if err == nil {
		err = cf.Err()
	}
	if err != nil {
		return nil, err
	}
	zr, err := zip.OpenReader(zipFile)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	prefix := mv.Path + "@" + mv.Version + "/"
	files := map[string][]byte{}
	for _, zf := range zr.File {
		name, _ := strings.CutPrefix(zf.Name, prefix)
		if !slices.Contains(catalogedFiles, name) {
			continue
		}
		r, err := zf.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", zf.Name, err)
		}
		// CheckZip bounded the declared sizes; enforce them as Unzip does.
		data, err := io.ReadAll(io.LimitReader(r, int64(zf.UncompressedSize64)+1))
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", zf.Name, err)
		}
		if uint64(len(data)) != zf.UncompressedSize64 {
			return nil, fmt.Errorf("%s: size differs from the size declared in the zip", zf.Name)
		}
		files[name] = data
	}
	return files, nil
}

// catalog runs syft over the extracted files.
func (g *Generator) catalog(ctx context.Context, dir string, m Module) (*syftsbom.SBOM, error) {
	src, err := directorysource.New(directorysource.Config{
		Path:  dir,
		Alias: source.Alias{Name: m.Path, Version: m.Version},
	})
	if err != nil {
		return nil, fmt.Errorf("syft source: %w", err)
	}
	defer src.Close()
	scanner, err := g.scanner()
	if err != nil {
		return nil, fmt.Errorf("building syft's license scanner: %w", err)
	}
	cfg := *g.cfg // CreateSBOM only reads it; a copy keeps it so
	s, err := syft.CreateSBOM(valuesFrom{ctx, scanner}, src, &cfg)
	if err != nil {
		return nil, fmt.Errorf("syft: %w", err)
	}
	return s, nil
}

// syftConfig is how syft runs. Every setting that differs from syft's
// defaults keeps syft offline, away from the go toolchain, or fast (see
// shared/reference/syft.md):
//   - only the go.mod cataloger, and without the packages library, which
//     would run `go list` over untrusted code and download modules;
//   - no license search anywhere (remote, module cache, vendor);
//   - no file catalogers, no archive search;
//   - serial: one go.mod is one task, goroutines only cost.
//
// It is built once: syft's default package configuration compiles the
// regular expressions of every binary classifier, about 5 ms each time.
func syftConfig(tool, version string) *syft.CreateSBOMConfig {
	goCfg := golang.DefaultCatalogerConfig().
		WithUsePackagesLib(false).
		WithSearchRemoteLicenses(false).
		WithSearchLocalModCacheLicenses(false).
		WithSearchLocalVendorLicenses(false)
	return syft.DefaultCreateSBOMConfig().
		WithTool(tool, version).
		WithPackagesConfig(pkgcataloging.DefaultConfig().WithGolangConfig(goCfg)).
		WithCatalogerSelection(cataloging.NewSelectionRequest().WithDefaults("go-module-file-cataloger")).
		WithArchiveConfig(cataloging.DefaultArchiveSearchConfig().WithIncludeIndexedArchives(false).WithMaxDepth(0)).
		WithoutFiles().
		WithParallelism(1)
}

// valuesFrom is a context cancelled with its embedded context that also
// carries the values of another.
type valuesFrom struct {
	context.Context
	values context.Context
}

func (c valuesFrom) Value(key any) any {
	if v := c.Context.Value(key); v != nil {
		return v
	}
	return c.values.Value(key)
}

// SHA256File returns the lowercase hex SHA-256 of a file: the digest SPDX
// checksums and in-toto subjects name.
func SHA256File(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// syftModuleVersion is the syft version in go.mod (TestSyftModuleVersion
// keeps them equal), for binaries without module build information, such
// as test binaries.
const syftModuleVersion = "v1.57.0"

// linkedSyftVersion is the syft module version linked into this binary, so
// the document names the cataloguer that really ran.
func linkedSyftVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/anchore/syft" {
				if d.Replace != nil {
					d = d.Replace
				}
				return d.Version
			}
		}
	}
	return syftModuleVersion
}
