package sbom

import (
	"archive/zip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/testrepo"
)

const mitText = testrepo.MITLicense

func writeZip(t *testing.T, m module.Version, files map[string]string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "m.zip")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for n, c := range files {
		w, _ := zw.Create(m.Path + "@" + m.Version + "/" + n)
		w.Write([]byte(c))
	}
	zw.Close()
	f.Close()
	return name
}

func TestLicenses(t *testing.T) {
	m := module.Version{Path: "corp.example/m", Version: "v1.0.0"}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"mit", map[string]string{"LICENSE": mitText}, []string{"MIT"}},
		{"none", map[string]string{"x.go": "package x\n"}, []string{}},
		{"unrecognised", map[string]string{"LICENSE.txt": "All rights reserved. Ask us.\n"}, []string{"LicenseRef-unrecognized"}},
		{"nested license ignored", map[string]string{"sub/LICENSE": mitText}, []string{}},
		{"copying.md", map[string]string{"COPYING.md": mitText}, []string{"MIT"}},
	} {
		got, err := Licenses(writeZip(t, m, tc.files), m)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: Licenses = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestCommonScannerKnowsCommonLicenses(t *testing.T) {
	s, err := commonScanner()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, l := range s.Scan([]byte(mitText)).Match {
		ids[l.ID] = true
	}
	if !ids["MIT"] {
		t.Errorf("MIT not recognised: %v", ids)
	}
}
