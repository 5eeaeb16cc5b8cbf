package store

import (
	"bytes"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// readList reads a version list the way the go command does, taking the
// first field of each line, and keeps only canonical versions valid for
// path: the file may have been edited or damaged, and whatever it holds is
// bounded by maxList.
func readList(name, path string) ([]string, error) {
	data, err := readFile(name, maxList)
	if err != nil {
		return nil, err
	}
	return parseList(data, path), nil
}

func parseList(data []byte, path string) []string {
	seen := make(map[string]bool)
	var vs []string
	for line := range bytes.Lines(data) {
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		v := f[0]
		if seen[v] || module.CanonicalVersion(v) != v || module.Check(path, v) != nil {
			continue
		}
		seen[v] = true
		vs = append(vs, v)
	}
	semver.Sort(vs)
	return vs
}

func formatList(vs []string) []byte {
	var b bytes.Buffer
	for _, v := range vs {
		b.WriteString(v)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
