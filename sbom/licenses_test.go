package sbom

import (
	"archive/zip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/mod/module"
)

const mitText = `MIT License

Copyright (c) 2026 Example

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
`

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
