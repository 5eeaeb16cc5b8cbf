package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/spdx/tools-golang/spdx"
	"golang.org/x/mod/module"
)

// NamespacePrefix starts every document namespace. The namespace only has to
// be unique per document, not resolvable.
const NamespacePrefix = "https://modgate.dev/spdx/"

// External reference types (category OTHER) for Go checksums. An h1: hash is
// a SHA-256, but of the module's file list, not of any file: as an SPDX
// checksum it would read as the hash of the package file and fail every
// comparison with one.
const (
	RefTypeModuleH1 = "go-module-h1" // h1: of the module zip (go.sum "path version")
	RefTypeGoModH1  = "go-mod-h1"    // h1: of its go.mod (go.sum "path version/go.mod")
)

// licenseUnrecognized is what Licenses reports for a license file nobody
// could read; SPDX wants every LicenseRef- defined in the document.
const licenseUnrecognized = "LicenseRef-unrecognized"

// shape turns syft's document into the one modgate publishes: our root
// package instead of syft's directory, our relationships, no file entries
// (the go.mod file syft saw has no digest with file cataloging off), and
// everything syft takes from the clock or a random source derived from the
// module instead.
func (g *Generator) shape(doc *spdx.Document, m Module, zipSHA256 string, mf *modFiles) {
	sum := sha256.Sum256([]byte(m.ZipHash))
	doc.DocumentName = m.Path + "@" + m.Version
	doc.DocumentNamespace = NamespacePrefix + m.Path + "@" + m.Version + "-" + hex.EncodeToString(sum[:])[:16]
	doc.CreationInfo.Created = m.Time.UTC().Format(time.RFC3339)
	doc.CreationInfo.Creators = []spdx.Creator{
		{CreatorType: "Tool", Creator: g.tool + "-" + g.version},
		{CreatorType: "Tool", Creator: "syft-" + g.syftVersion},
	}
	doc.Files = nil

	root, others := rootPackage(m, zipSHA256, mf)
	doc.OtherLicenses = append(doc.OtherLicenses, others...)
	rels := []*spdx.Relationship{relationship("DOCUMENT", "DESCRIBES", root.PackageSPDXIdentifier, "")}
	indirect := map[string]bool{}
	for _, r := range mf.requires() {
		indirect[r.Mod.Path+"@"+r.Mod.Version] = r.Indirect
	}
	pkgs := []*spdx.Package{root}
	for _, p := range doc.Packages {
		if strings.HasPrefix(string(p.PackageSPDXIdentifier), "DocumentRoot-") {
			continue // syft's package for the scanned directory
		}
		p.PackageExternalReferences = append(p.PackageExternalReferences, hashRefs(mf, p.PackageName, p.PackageVersion)...)
		comment := ""
		if indirect[p.PackageName+"@"+p.PackageVersion] {
			comment = "indirect requirement"
		}
		rels = append(rels, relationship(root.PackageSPDXIdentifier, "DEPENDS_ON", p.PackageSPDXIdentifier, comment))
		pkgs = append(pkgs, p)
	}
	doc.Packages = pkgs
	doc.Relationships = rels
}

func rootPackage(m Module, zipSHA256 string, mf *modFiles) (*spdx.Package, []*spdx.OtherLicense) {
	declared, others := licenseExpression(m.Licenses)
	escPath, _ := module.EscapePath(m.Path) // checked by Module.check
	escVersion, _ := module.EscapeVersion(m.Version)
	p := &spdx.Package{
		PackageName:           m.Path,
		PackageSPDXIdentifier: spdx.ElementID(sanitizeID("Package-go-module-" + m.Path + "-" + m.Version)),
		PackageVersion:        m.Version,
		// the file as the GOPROXY protocol serves it
		PackageFileName:           escPath + "/@v/" + escVersion + ".zip",
		PackageSupplier:           &spdx.Supplier{Supplier: "NOASSERTION"},
		PackageDownloadLocation:   "NOASSERTION",
		FilesAnalyzed:             false,
		IsFilesAnalyzedTagPresent: true,
		PackageChecksums:          []spdx.Checksum{{Algorithm: spdx.SHA256, Value: zipSHA256}},
		PackageSourceInfo:         "module zip admitted by modgate; SBOM made from its files",
		PackageLicenseConcluded:   "NOASSERTION",
		PackageLicenseDeclared:    declared,
		PackageCopyrightText:      "NOASSERTION",
		PackageExternalReferences: []*spdx.PackageExternalReference{
			{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: goPURL(m.Path, m.Version)},
			{Category: "OTHER", RefType: RefTypeModuleH1, Locator: m.ZipHash},
			{Category: "OTHER", RefType: RefTypeGoModH1, Locator: m.ModHash},
		},
		PrimaryPackagePurpose: "SOURCE",
		ReleaseDate:           m.Time.UTC().Format(time.RFC3339),
		PackageComment:        replaceComment(mf),
	}
	return p, others
}

// licenseExpression joins the module's license identifiers with AND: every
// root license file applies. Identifiers that are not on the SPDX list
// become LicenseRefs, defined in the document as SPDX requires.
func licenseExpression(ids []string) (string, []*spdx.OtherLicense) {
	if ids == nil {
		return "NOASSERTION", nil
	}
	if len(ids) == 0 {
		return "NONE", nil
	}
	var terms []string
	var others []*spdx.OtherLicense
	for _, id := range ids {
		if valid, _ := spdxexp.ValidateLicenses([]string{id}); valid && !strings.HasPrefix(id, "LicenseRef-") {
			terms = append(terms, id)
			continue
		}
		ref := id
		text := "The text of a root license file of the module, which modgate could not match to a license on the SPDX list."
		if id != licenseUnrecognized {
			ref = sanitizeID("LicenseRef-" + strings.TrimPrefix(id, "LicenseRef-"))
			text = fmt.Sprintf("A root license file of the module, identified by licensecheck as %q.", id)
		}
		terms = append(terms, ref)
		others = append(others, &spdx.OtherLicense{LicenseIdentifier: ref, ExtractedText: text, LicenseName: id})
	}
	return strings.Join(terms, " AND "), others
}

// replaceComment records the go.mod replace and exclude directives that
// were not applied to the package list, so a reader knows they exist.
func replaceComment(mf *modFiles) string {
	if mf.file == nil || len(mf.file.Replace)+len(mf.file.Exclude) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("go.mod directives that only apply when this module is the main module (not applied to the requirements listed):")
	for _, r := range mf.file.Replace {
		fmt.Fprintf(&b, " replace %s => %s;", modString(r.Old), modString(r.New))
	}
	for _, e := range mf.file.Exclude {
		fmt.Fprintf(&b, " exclude %s;", modString(e.Mod))
	}
	return strings.TrimSuffix(b.String(), ";")
}

func modString(v module.Version) string {
	if v.Version == "" {
		return v.Path
	}
	return v.Path + " " + v.Version
}

// hashRefs are the go.sum hashes of a requirement.
func hashRefs(mf *modFiles, path, version string) []*spdx.PackageExternalReference {
	var refs []*spdx.PackageExternalReference
	if h := mf.sums[path+" "+version]; h != "" {
		refs = append(refs, &spdx.PackageExternalReference{Category: "OTHER", RefType: RefTypeModuleH1, Locator: h})
	}
	if h := mf.sums[path+" "+version+"/go.mod"]; h != "" {
		refs = append(refs, &spdx.PackageExternalReference{Category: "OTHER", RefType: RefTypeGoModH1, Locator: h})
	}
	return refs
}

func relationship(a spdx.ElementID, typ string, b spdx.ElementID, comment string) *spdx.Relationship {
	return &spdx.Relationship{
		RefA:                spdx.DocElementID{ElementRefID: a},
		Relationship:        typ,
		RefB:                spdx.DocElementID{ElementRefID: b},
		RelationshipComment: comment,
	}
}

var notIDChar = regexp.MustCompile(`[^a-zA-Z0-9.-]`)

// sanitizeID makes an SPDX idstring: letters, digits, "." and "-".
func sanitizeID(id string) string { return notIDChar.ReplaceAllString(id, "-") }
