package sbom

import (
	"bytes"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anchore/packageurl-go"
	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/santhosh-tekuri/jsonschema/v6"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdxlib"
)

// spdxSchema is the official SPDX 2.3 JSON schema, as syft ships it.
var spdxSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/anchore/syft").Output()
	if err != nil {
		return nil, err
	}
	name := filepath.Join(strings.TrimSpace(string(out)), "schema", "spdx-json", "spdx-schema-2.3.json")
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("spdx-schema-2.3.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("spdx-schema-2.3.json")
})

var (
	idString    = regexp.MustCompile(`^[a-zA-Z0-9.-]+$`)
	refTypeID   = regexp.MustCompile(`^[a-zA-Z0-9.-]+$`)
	spdxCreated = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
)

// checkSPDX validates data as an SPDX 2.3 JSON document: against the
// official JSON schema, by parsing and validating it with
// github.com/spdx/tools-golang, and by the rules of the spec the schema
// cannot express. It returns the parsed document.
func checkSPDX(t *testing.T, data []byte) *spdx.Document {
	t.Helper()
	sch, err := spdxSchema()
	if err != nil {
		t.Fatalf("SPDX 2.3 schema: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("SBOM is not JSON: %v", err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("SBOM does not validate against the SPDX 2.3 schema: %v", err)
	}
	doc, err := spdxjson.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("tools-golang cannot read the SBOM: %v", err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Fatalf("tools-golang: invalid SBOM: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXIdentifier != "DOCUMENT" {
		t.Errorf("header: version %q, data license %q, id %q", doc.SPDXVersion, doc.DataLicense, doc.SPDXIdentifier)
	}
	if u, err := url.Parse(doc.DocumentNamespace); err != nil || u.Scheme == "" || strings.Contains(doc.DocumentNamespace, "#") {
		t.Errorf("namespace %q is not an absolute URI without #", doc.DocumentNamespace)
	}
	if !spdxCreated.MatchString(doc.CreationInfo.Created) {
		t.Errorf("created %q is not YYYY-MM-DDThh:mm:ssZ", doc.CreationInfo.Created)
	}
	if _, err := time.Parse(time.RFC3339, doc.CreationInfo.Created); err != nil {
		t.Errorf("created: %v", err)
	}
	defined := map[string]bool{}
	for _, ol := range doc.OtherLicenses {
		defined[ol.LicenseIdentifier] = true
		if ol.ExtractedText == "" {
			t.Errorf("%s has no extracted text", ol.LicenseIdentifier)
		}
	}
	ids := map[spdx.ElementID]bool{}
	for _, p := range doc.Packages {
		if ids[p.PackageSPDXIdentifier] {
			t.Errorf("SPDXID %s used twice", p.PackageSPDXIdentifier)
		}
		ids[p.PackageSPDXIdentifier] = true
		if !idString.MatchString(string(p.PackageSPDXIdentifier)) {
			t.Errorf("SPDXID %q is not an idstring", p.PackageSPDXIdentifier)
		}
		if p.PackageName == "" || p.PackageDownloadLocation == "" {
			t.Errorf("package %s lacks a name or download location", p.PackageSPDXIdentifier)
		}
		if !p.FilesAnalyzed && (p.PackageVerificationCode != nil || len(p.PackageLicenseInfoFromFiles) > 0) {
			t.Errorf("package %s: files not analyzed but verification code or license info from files", p.PackageName)
		}
		for _, lic := range []string{p.PackageLicenseConcluded, p.PackageLicenseDeclared} {
			checkLicenseExpression(t, lic, defined)
		}
		for _, r := range p.PackageExternalReferences {
			switch {
			case !strings.Contains("SECURITY PACKAGE-MANAGER PERSISTENT-ID OTHER", r.Category):
				t.Errorf("%s: external ref category %q", p.PackageName, r.Category)
			case strings.ContainsAny(r.Locator, " \t\n") || r.Locator == "":
				t.Errorf("%s: external ref locator %q", p.PackageName, r.Locator)
			case r.Category == "OTHER" && !refTypeID.MatchString(r.RefType):
				t.Errorf("%s: external ref type %q", p.PackageName, r.RefType)
			case r.RefType == "purl":
				if _, err := packageurl.FromString(r.Locator); err != nil {
					t.Errorf("%s: purl %q: %v", p.PackageName, r.Locator, err)
				}
			}
		}
	}
	describes := 0
	for _, r := range doc.Relationships {
		if r.RefA.ElementRefID == "DOCUMENT" && r.Relationship == "DESCRIBES" {
			describes++
		}
	}
	if describes != 1 {
		t.Errorf("document DESCRIBES %d packages, want 1", describes)
	}
	return doc
}

func checkLicenseExpression(t *testing.T, expr string, defined map[string]bool) {
	t.Helper()
	if expr == "NOASSERTION" || expr == "NONE" {
		return
	}
	for _, term := range strings.Split(expr, " AND ") {
		if strings.HasPrefix(term, "LicenseRef-") {
			if !defined[term] || !idString.MatchString(strings.TrimPrefix(term, "LicenseRef-")) {
				t.Errorf("license %s is not defined in the document", term)
			}
			continue
		}
		if ok, bad := spdxexp.ValidateLicenses([]string{term}); !ok {
			t.Errorf("license %q is not an SPDX identifier: %v", term, bad)
		}
	}
}
