package sbom

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/anchore/packageurl-go"
	"github.com/anchore/syft/syft/file"
	"github.com/anchore/syft/syft/pkg"
	syftsbom "github.com/anchore/syft/syft/sbom"
	"golang.org/x/mod/modfile"

	"github.com/modgate/modgate/internal/gosum"
)

// modFiles is what the module's own go.mod and go.sum say.
type modFiles struct {
	gomod []byte        // the go.mod file
	file  *modfile.File // nil if the zip has no go.mod
	// sums maps "path version" and "path version/go.mod" to the h1: hash in go.sum.
	sums map[string]string
}

func parseModFiles(files map[string][]byte) (*modFiles, error) {
	mf := &modFiles{sums: map[string]string{}}
	gomod, ok := files["go.mod"]
	if !ok {
		return mf, nil
	}
	mf.gomod = gomod
	// Parse, not ParseLax: the replace and exclude directives are kept so the
	// SBOM can say they exist (and that they are not applied).
	var err error
	if mf.file, err = modfile.Parse("go.mod", gomod, nil); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(files["go.sum"]))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && strings.HasPrefix(f[2], "h1:") {
			mf.sums[f[0]+" "+f[1]] = f[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("go.sum: %w", err)
	}
	return mf, nil
}

// goModHash is the h1: hash of go.mod, as go.sum records it.
func (mf *modFiles) goModHash() string {
	return gosum.ModHash(mf.gomod)
}

// requires returns the go.mod requirements sorted by path.
func (mf *modFiles) requires() []*modfile.Require {
	if mf.file == nil {
		return nil
	}
	reqs := slices.Clone(mf.file.Require)
	slices.SortFunc(reqs, func(a, b *modfile.Require) int { return strings.Compare(a.Mod.Path, b.Mod.Path) })
	return reqs
}

// keepRequirements makes syft's package list exactly the go.mod
// requirements. syft applies the module's replace and exclude directives,
// but those only take effect when the module is the main module: whoever
// requires this version builds against its requirements as written. (syft
// also deletes every version of an excluded path, and lists the targets of
// replacements of modules that are not even required.)
func keepRequirements(s *syftsbom.SBOM, mf *modFiles) {
	want := map[string]string{}
	for _, r := range mf.requires() {
		want[r.Mod.Path] = r.Mod.Version
	}
	have := map[string]bool{}
	for _, p := range s.Artifacts.Packages.Sorted() {
		if p.Type == pkg.GoModulePkg && want[p.Name] == p.Version && p.Version != "" && atRootGoMod(p) && !have[p.Name] {
			have[p.Name] = true
			continue
		}
		s.Artifacts.Packages.Delete(p.ID())
	}
	loc := file.NewLocation("/go.mod").WithAnnotation(pkg.EvidenceAnnotationKey, pkg.PrimaryEvidenceAnnotation)
	for _, r := range mf.requires() {
		if have[r.Mod.Path] {
			continue
		}
		// The same fields syft's go.mod cataloger sets.
		p := pkg.Package{
			Name:      r.Mod.Path,
			Version:   r.Mod.Version,
			Licenses:  pkg.NewLicenseSet(),
			Locations: file.NewLocationSet(loc),
			PURL:      goPURL(r.Mod.Path, r.Mod.Version),
			Language:  pkg.Go,
			Type:      pkg.GoModulePkg,
			Metadata:  pkg.GolangModuleEntry{H1Digest: mf.sums[r.Mod.Path+" "+r.Mod.Version]},
		}
		p.SetID()
		s.Artifacts.Packages.Add(p)
	}
	s.Relationships = nil // re-made from the requirements in the SPDX document
}

func atRootGoMod(p pkg.Package) bool {
	for _, l := range p.Locations.ToSlice() {
		if l.RealPath == "/go.mod" {
			return true
		}
	}
	return false
}

// goPURL is the package URL syft gives a Go module (pkg:golang/<path>@<version>),
// with the path's slashes kept as namespace separators.
func goPURL(path, version string) string {
	namespace, name := "", path
	if i := strings.LastIndex(path, "/"); i > 0 && i < len(path)-1 {
		namespace, name = path[:i], path[i+1:]
	}
	return packageurl.NewPackageURL(packageurl.TypeGolang, namespace, name, version, nil, "").ToString()
}
