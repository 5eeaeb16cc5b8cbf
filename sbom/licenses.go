package sbom

import (
	"archive/zip"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"

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
		scanner, err := commonScanner()
		if err != nil {
			return nil, err
		}
		cov := scanner.Scan(data)
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

// commonLicenses are the licenses the scanner knows: those that cover
// nearly all Go modules. licensecheck's full set (551 texts) takes seconds
// to compile, in every `modgate admit` process; this subset takes ~50 ms. A
// license outside it is reported as LicenseRef-unrecognized, which a policy
// can deny or send to a person, never silently allow.
var commonLicenses = []string{
	"0BSD", "AGPL-3.0", "Apache-2.0", "BlueOak-1.0.0", "BSD-2-Clause", "BSD-3-Clause", "BSL-1.0",
	"CC0-1.0", "EPL-2.0", "GPL-2.0", "GPL-3.0", "ISC", "LGPL-2.1", "LGPL-3.0", "MIT", "MIT-0",
	"MPL-2.0", "Unlicense", "Zlib",
}

// commonScanner builds the scanner once per process.
var commonScanner = sync.OnceValues(func() (*licensecheck.Scanner, error) {
	var keep []licensecheck.License
	for _, l := range licensecheck.BuiltinLicenses() {
		for _, id := range commonLicenses {
			if l.ID == id || strings.HasPrefix(l.ID, id+"-") && !strings.HasPrefix(id, "MIT") {
				keep = append(keep, l)
				break
			}
		}
	}
	return licensecheck.NewScanner(keep)
})

func isLicenseFile(name string) bool {
	base := strings.ToUpper(strings.TrimSuffix(name, path.Ext(name)))
	switch base {
	case "LICENSE", "LICENCE", "COPYING", "UNLICENSE", "LICENSE-MIT", "LICENSE-APACHE":
		return true
	}
	return false
}
