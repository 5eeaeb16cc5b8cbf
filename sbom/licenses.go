// Package sbom describes what an admitted module version is made of: its own
// licenses, detected offline from the exact files of its zip. (The SPDX
// document generated with syft and its cosign signature come here next.)
package sbom

import (
	"archive/zip"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/google/licensecheck"
	"golang.org/x/mod/module"
)

// maxLicenseFile bounds how much of one license file is scanned.
const maxLicenseFile = 1 << 20

// minCoverage is how much of a license file must be recognised text for
// its licenses to count: the same bar pkg.go.dev uses to call a module
// redistributable.
const minCoverage = 75

// Licenses returns the SPDX identifiers of the licenses in the module's
// root license files (LICENSE, LICENCE, COPYING, with any extension), sorted
// and without duplicates. A file whose text is mostly unrecognised
// contributes "LicenseRef-unrecognized", so that a policy can tell "no
// license" from "a license nobody could read".
func Licenses(zipFile string, m module.Version) ([]string, error) {
	zr, err := zip.OpenReader(zipFile)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	prefix := m.Path + "@" + m.Version + "/"
	seen := map[string]bool{}
	for _, f := range zr.File {
		name, ok := strings.CutPrefix(f.Name, prefix)
		if !ok || strings.Contains(name, "/") || !isLicenseFile(name) {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(io.LimitReader(rc, maxLicenseFile))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		cov := licensecheck.Scan(data)
		if cov.Percent < minCoverage {
			seen["LicenseRef-unrecognized"] = true
			continue
		}
		for _, match := range cov.Match {
			seen[match.ID] = true
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

func isLicenseFile(name string) bool {
	base := strings.ToUpper(strings.TrimSuffix(name, path.Ext(name)))
	switch base {
	case "LICENSE", "LICENCE", "COPYING", "UNLICENSE", "LICENSE-MIT", "LICENSE-APACHE":
		return true
	}
	return false
}
