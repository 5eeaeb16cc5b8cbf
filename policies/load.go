package policies

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Load reads the policy files (*.yaml, *.yml; not recursive, names starting
// with "." ignored) of dir, parses and compiles them. Its error lists every
// problem in every file, each naming file, line and column.
func (c Config) Load(dir string) (*Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	var files []*File
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		p := filepath.Join(dir, name)
		if !e.Type().IsRegular() {
			if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
				errs = append(errs, &Error{File: p, Err: "not a regular file"})
				continue
			}
		}
		data, err := readFile(p)
		if err != nil {
			errs = append(errs, &Error{File: p, Err: err.Error()})
			continue
		}
		f, err := Parse(p, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files = append(files, f)
	}
	if len(errs) == 0 && len(files) == 0 {
		return nil, fmt.Errorf("policies: no policy files (*.yaml, *.yml) in %s; with none, every module would be denied", dir)
	}
	if len(errs) == 0 {
		return c.Compile(files)
	}
	// Compile what parsed, so that one broken file does not hide the
	// type errors of the others; report everything in file order.
	if len(files) > 0 {
		if _, err := c.Compile(files); err != nil {
			errs = append(errs, err)
		}
	}
	var located []*Error
	var out []error
	for _, err := range errs {
		if l := Errors(err); len(l) > 0 {
			located = append(located, l...)
		} else {
			out = append(out, err) // not about a file: a configuration error
		}
	}
	sort.SliceStable(located, func(i, j int) bool { return located[i].File < located[j].File })
	for _, e := range located {
		out = append(out, e)
	}
	return nil, errors.Join(out...)
}

func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("file is over the limit of %d bytes", MaxFileSize)
	}
	return data, nil
}
