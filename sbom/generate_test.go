package sbom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spdx/tools-golang/spdx"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

// testGenerator is built once: building syft's license scanner takes seconds.
var testGenerator = sync.OnceValues(func() (*Generator, error) { return NewGenerator("modgate", "v0.0.0-test") })

func generator(tb testing.TB) *Generator {
	tb.Helper()
	g, err := testGenerator()
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

func generate(tb testing.TB, m Module) []byte {
	tb.Helper()
	out, err := generator(tb).Generate(context.Background(), m)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestGenerateRealModules: for real modules, the SBOM is valid SPDX 2.3, its
// root is the module (purl, zip SHA-256, h1: hashes, licenses), and its
// other packages are exactly the go.mod requirements, each with purl and
// go.sum hashes, each a DEPENDS_ON of the root.
func TestGenerateRealModules(t *testing.T) {
	for _, mv := range []module.Version{modX, modNATS, modNet} {
		t.Run(mv.Path, func(t *testing.T) {
			m := cachedModule(t, mv)
			doc := checkSPDX(t, generate(t, m))
			checkRoot(t, doc, m)
			checkRequirements(t, doc, m)
		})
	}
}

func checkRoot(t *testing.T, doc *spdx.Document, m Module) {
	t.Helper()
	root := doc.Packages[0]
	if doc.Relationships[0].RefB.ElementRefID != root.PackageSPDXIdentifier {
		t.Fatalf("document describes %s, not the first package", doc.Relationships[0].RefB.ElementRefID)
	}
	if root.PackageName != m.Path || root.PackageVersion != m.Version {
		t.Errorf("root package is %s@%s", root.PackageName, root.PackageVersion)
	}
	zipData, err := os.ReadFile(m.ZipFile)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(zipData)
	if len(root.PackageChecksums) != 1 || root.PackageChecksums[0].Algorithm != spdx.SHA256 || root.PackageChecksums[0].Value != hex.EncodeToString(sum[:]) {
		t.Errorf("root checksums %v, want SHA256 of the zip", root.PackageChecksums)
	}
	wantRefs := map[string]string{
		"purl":          "pkg:golang/" + m.Path + "@" + strings.ReplaceAll(m.Version, "+", "%2B"),
		RefTypeModuleH1: m.ZipHash,
		RefTypeGoModH1:  m.ModHash,
	}
	if got := refs(root); !mapsEqual(got, wantRefs) {
		t.Errorf("root external refs %v, want %v", got, wantRefs)
	}
	wantLic := strings.Join(m.Licenses, " AND ")
	if len(m.Licenses) == 0 {
		wantLic = "NONE"
	}
	if root.PackageLicenseDeclared != wantLic {
		t.Errorf("root declared license %q, want %q", root.PackageLicenseDeclared, wantLic)
	}
	if doc.CreationInfo.Created != m.Time.UTC().Format("2006-01-02T15:04:05Z") {
		t.Errorf("created %s, want the tag time", doc.CreationInfo.Created)
	}
	if !strings.HasPrefix(doc.DocumentNamespace, NamespacePrefix+m.Path+"@"+m.Version+"-") {
		t.Errorf("namespace %s", doc.DocumentNamespace)
	}
}

// checkRequirements compares the packages other than the root with go.mod
// and go.sum, read independently from the zip.
func checkRequirements(t *testing.T, doc *spdx.Document, m Module) {
	t.Helper()
	files, err := readZip(module.Version{Path: m.Path, Version: m.Version}, m.ZipFile)
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.Parse("go.mod", files["go.mod"], nil)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, line := range strings.Split(string(files["go.sum"]), "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			sums[f[0]+" "+f[1]] = f[2]
		}
	}
	var want, got []string
	for _, r := range mf.Require {
		want = append(want, r.Mod.Path+"@"+r.Mod.Version)
	}
	dependsOn := map[spdx.ElementID]bool{}
	for _, r := range doc.Relationships {
		if r.Relationship == "DEPENDS_ON" && r.RefA.ElementRefID == doc.Packages[0].PackageSPDXIdentifier {
			dependsOn[r.RefB.ElementRefID] = true
		}
	}
	for _, p := range doc.Packages[1:] {
		got = append(got, p.PackageName+"@"+p.PackageVersion)
		if !dependsOn[p.PackageSPDXIdentifier] {
			t.Errorf("no DEPENDS_ON %s", p.PackageName)
		}
		r := refs(p)
		if r["purl"] != "pkg:golang/"+p.PackageName+"@"+strings.ReplaceAll(p.PackageVersion, "+", "%2B") {
			t.Errorf("%s: purl %q", p.PackageName, r["purl"])
		}
		if h := sums[p.PackageName+" "+p.PackageVersion]; r[RefTypeModuleH1] != h {
			t.Errorf("%s: module h1 %q, go.sum %q", p.PackageName, r[RefTypeModuleH1], h)
		}
		if h := sums[p.PackageName+" "+p.PackageVersion+"/go.mod"]; r[RefTypeGoModH1] != h || h == "" {
			t.Errorf("%s: go.mod h1 %q, go.sum %q", p.PackageName, r[RefTypeGoModH1], h)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("packages %v\nrequirements %v", got, want)
	}
	if len(dependsOn) != len(want) {
		t.Errorf("%d DEPENDS_ON relationships, want %d", len(dependsOn), len(want))
	}
	t.Logf("%s@%s: %d requirements, all with purl and go.sum hashes", m.Path, m.Version, len(want))
}

func refs(p *spdx.Package) map[string]string {
	m := map[string]string{}
	for _, r := range p.PackageExternalReferences {
		if r.RefType != "cpe23Type" {
			m[r.RefType] = r.Locator
		}
	}
	return m
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestGenerateReproducible: the same module version gives the same bytes,
// from another copy of the zip, in another Generator.
func TestGenerateReproducible(t *testing.T) {
	for _, mv := range []module.Version{modX, modNATS} {
		m := cachedModule(t, mv)
		first := generate(t, m)
		data, err := os.ReadFile(m.ZipFile)
		if err != nil {
			t.Fatal(err)
		}
		m.ZipFile = filepath.Join(t.TempDir(), "copy.zip")
		if err := os.WriteFile(m.ZipFile, data, 0o644); err != nil {
			t.Fatal(err)
		}
		g, err := NewGenerator("modgate", "v0.0.0-test")
		if err != nil {
			t.Fatal(err)
		}
		second, err := g.Generate(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Errorf("%s: two SBOMs differ:\n%s\n%s", mv, first, second)
		}
	}
}

const replaceGoMod = `module corp.example/m

go 1.24

require (
	example.com/a v1.0.0
	example.com/b v1.2.0 // indirect
	example.com/c v1.0.0
	example.com/d v0.0.0-20200101000000-abcdefabcdef
	example.com/e v2.0.0+incompatible
)

replace example.com/a => example.com/a2 v1.1.0

replace example.com/c => ../c

replace example.com/unused => example.com/unused2 v1.0.0

exclude example.com/b v1.1.0
`

const replaceGoSum = `example.com/a v1.0.0/go.mod h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
example.com/a2 v1.1.0 h1:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=
example.com/a2 v1.1.0/go.mod h1:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC=
example.com/b v1.2.0 h1:DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD=
example.com/b v1.2.0/go.mod h1:EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE=
example.com/c v1.0.0/go.mod h1:FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF=
example.com/d v0.0.0-20200101000000-abcdefabcdef/go.mod h1:GGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGG=
example.com/e v2.0.0+incompatible h1:HHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHH=
example.com/e v2.0.0+incompatible/go.mod h1:IIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIII=
`

// TestGenerateReplaceExclude: replace and exclude directives apply only to
// the main module, so the SBOM of a version lists its requirements as
// written (syft alone would list a2 and ../c and drop b), and says which
// directives it did not apply.
func TestGenerateReplaceExclude(t *testing.T) {
	mv := module.Version{Path: "corp.example/m", Version: "v1.0.0"}
	m := writeModule(t, mv, map[string]string{
		"go.mod":  replaceGoMod,
		"go.sum":  replaceGoSum,
		"m.go":    "package m\n",
		"LICENSE": mitText,
		"COPYING": "All rights reserved. Ask us.\n",
	})
	doc := checkSPDX(t, generate(t, m))
	checkRoot(t, doc, m)
	checkRequirements(t, doc, m)
	root := doc.Packages[0]
	for _, want := range []string{"replace example.com/a => example.com/a2 v1.1.0", "replace example.com/c => ../c", "exclude example.com/b v1.1.0"} {
		if !strings.Contains(root.PackageComment, want) {
			t.Errorf("root comment %q does not mention %q", root.PackageComment, want)
		}
	}
	if root.PackageLicenseDeclared != "LicenseRef-unrecognized AND MIT" {
		t.Errorf("declared license %q", root.PackageLicenseDeclared)
	}
	for _, r := range doc.Relationships {
		if r.Relationship == "DEPENDS_ON" && strings.Contains(string(r.RefB.ElementRefID), "example.com-b-") != (r.RelationshipComment == "indirect requirement") {
			t.Errorf("relationship to %s has comment %q", r.RefB.ElementRefID, r.RelationshipComment)
		}
	}
}

// TestGenerateNoRequirements: a module without requirements, go.sum or
// license is only its root package, described by the document.
func TestGenerateNoRequirements(t *testing.T) {
	mv := module.Version{Path: "corp.example/leaf/v2", Version: "v2.0.1-rc.1"}
	m := writeModule(t, mv, map[string]string{"go.mod": "module corp.example/leaf/v2\n\ngo 1.22\n", "leaf.go": "package leaf\n"})
	doc := checkSPDX(t, generate(t, m))
	checkRoot(t, doc, m)
	if len(doc.Packages) != 1 || len(doc.Relationships) != 1 {
		t.Errorf("%d packages, %d relationships; want the root only", len(doc.Packages), len(doc.Relationships))
	}
}

func TestGenerateRefuses(t *testing.T) {
	mv := module.Version{Path: "corp.example/m", Version: "v1.0.0"}
	good := writeModule(t, mv, map[string]string{"go.mod": "module corp.example/m\n", "m.go": "package m\n"})
	noGoMod := writeModule(t, mv, map[string]string{"m.go": "package m\n"})
	for _, tc := range []struct {
		name   string
		change func(*Module)
		want   string
	}{
		{"go.mod hash differs", func(m *Module) { m.ModHash = good.ZipHash }, "go.mod in"},
		{"zip of another version", func(m *Module) { m.Version = "v1.0.1" }, "does not have prefix"},
		{"no tag time", func(m *Module) { m.Time = time.Time{} }, "tag time"},
		{"no zip hash", func(m *Module) { m.ZipHash = "" }, "zip hash"},
		{"bad version", func(m *Module) { m.Version = "1.0" }, "version"},
		{"zip without go.mod", func(m *Module) { m.ZipFile = noGoMod.ZipFile }, "has no go.mod"},
		{"missing zip", func(m *Module) { m.ZipFile = filepath.Join(t.TempDir(), "none.zip") }, "no such file"},
	} {
		m := good
		tc.change(&m)
		_, err := generator(t).Generate(context.Background(), m)
		var merr *module.ModuleError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &merr) || !strings.Contains(err.Error(), m.Path) {
			t.Errorf("%s: err = %v, want a module error mentioning %q", tc.name, err, tc.want)
		}
	}
}

// TestGenerateOffline: Generate neither runs a program (syft's packages
// library would run `go list`) nor opens a connection (GOPROXY, which
// syft's remote license search uses, points at a listener that fails the
// test when anything connects).
func TestGenerateOffline(t *testing.T) {
	m := cachedModule(t, modNATS)
	g := generator(t)
	bin := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	for _, name := range []string{"go", "git"} {
		script := "#!/bin/sh\necho \"$0 $*\" >> " + marker + "\nexit 1\n"
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	connected := make(chan string, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case connected <- c.RemoteAddr().String():
			default:
			}
			c.Close() // fail fast, whatever the client wanted
		}
	}()
	t.Setenv("PATH", bin)
	t.Setenv("GOPROXY", "http://"+ln.Addr().String())
	t.Setenv("GOFLAGS", "-mod=mod")
	if _, err := g.Generate(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if ran, err := os.ReadFile(marker); err == nil {
		t.Errorf("Generate ran programs:\n%s", ran)
	}
	select {
	case from := <-connected:
		t.Errorf("Generate connected to GOPROXY from %s", from)
	default:
	}
}

// TestGenerateConcurrent: one Generator serves concurrent callers, each
// getting the document it would get alone (run it with -race).
func TestGenerateConcurrent(t *testing.T) {
	mods := []Module{cachedModule(t, modX), cachedModule(t, modNATS), cachedModule(t, modNet)}
	want := make([][]byte, len(mods))
	for i, m := range mods {
		want[i] = generate(t, m)
	}
	var wg sync.WaitGroup
	for round := 0; round < 4; round++ {
		for i, m := range mods {
			wg.Go(func() {
				got, err := generator(t).Generate(context.Background(), m)
				if err != nil || !bytes.Equal(got, want[i]) {
					t.Errorf("%s: concurrent Generate differs (err %v)", m.Path, err)
				}
			})
		}
	}
	wg.Wait()
}

// TestSyftModuleVersion: the syft version a document names when the binary
// has no build information is the one go.mod requires.
func TestSyftModuleVersion(t *testing.T) {
	data, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Require {
		switch r.Mod.Path {
		case "github.com/anchore/syft":
			if r.Mod.Version != syftModuleVersion {
				t.Errorf("go.mod requires syft %s, syftModuleVersion is %s", r.Mod.Version, syftModuleVersion)
			}
		case "github.com/sigstore/cosign/v2":
			if r.Mod.Version != cosignModuleVersion {
				t.Errorf("go.mod requires cosign %s, the interop tests use the %s CLI", r.Mod.Version, cosignModuleVersion)
			}
		}
	}
}
