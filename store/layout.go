package store

import (
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"
)

// File suffixes of a version, besides the documents.
const (
	suffixInfo    = ".info"
	suffixMod     = ".mod"
	suffixZip     = ".zip"
	suffixZipHash = ".ziphash"
)

// Document suffixes: the only extra files a version may carry.
const (
	DocSPDX       = ".spdx.json"        // SPDX 2.3 JSON SBOM
	DocSPDXSig    = ".spdx.json.sig"    // cosign signature over the SBOM
	DocSPDXBundle = ".spdx.json.bundle" // cosign bundle for the SBOM signature
	DocInToto     = ".intoto.jsonl"     // signed verification summary (DSSE)
	DocVerdict    = ".verdict.json"     // admission verdict
)

// docSuffixes is the allow-list. No suffix of a version file may end with
// another one (TestSuffixesUnambiguous): otherwise version "v1.0.0-a.b" with
// one suffix could name the same file as "v1.0.0-a" with another.
var docSuffixes = []string{DocSPDX, DocSPDXSig, DocSPDXBundle, DocInToto, DocVerdict}

// IsDoc reports whether suffix is an allowed document suffix.
func IsDoc(suffix string) bool {
	for _, s := range docSuffixes {
		if s == suffix {
			return true
		}
	}
	return false
}

// allSuffixes lists every file a version can have, .info last.
func allSuffixes() []string {
	s := []string{suffixZip, suffixZipHash, suffixMod}
	s = append(s, docSuffixes...)
	return append(s, suffixInfo)
}

func isFileSuffix(s string) bool {
	switch s {
	case suffixInfo, suffixMod, suffixZip, suffixZipHash:
		return true
	}
	return IsDoc(s) || IsState(s)
}

// A location is where the files of one version live.
type location struct {
	dir  string // <root>/<escaped path>/@v
	base string // escaped version
}

func (l location) file(suffix string) string { return filepath.Join(l.dir, l.base+suffix) }
func (l location) list() string              { return filepath.Join(l.dir, "list") }

// locate returns the location of m, which the caller has checked.
func (d *Dir) locate(m module.Version) (location, error) {
	dir, err := d.moduleDir(m.Path)
	if err != nil {
		return location{}, err
	}
	ev, err := module.EscapeVersion(m.Version)
	if err != nil {
		return location{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return location{dir: dir, base: ev}, nil
}

// moduleDir returns <root>/<escaped path>/@v for a checked module path.
func (d *Dir) moduleDir(path string) (string, error) {
	ep, err := module.EscapePath(path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	dir := filepath.Join(d.root, filepath.FromSlash(ep), "@v")
	// module.CheckPath already rules out "..", empty and dot-led elements;
	// this is the last line should that ever change.
	if !strings.HasPrefix(dir, d.root+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: module path %q leaves the store", ErrInvalid, path)
	}
	return dir, nil
}
