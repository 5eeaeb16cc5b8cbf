package store

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// Walk calls fn for every published version in the store: every version
// with an .info, whether or not a crash kept it out of its list. Modules come
// in lexical order of their escaped paths, versions in semver order. Walk
// stops at the first error from fn, or when ctx ends, and returns it.
// Directories and files that no published version can name are skipped.
func (d *Dir) Walk(ctx context.Context, fn func(module.Version) error) error {
	return filepath.WalkDir(d.root, func(name string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.IsDir() || name == d.root {
			return nil
		}
		if strings.HasPrefix(e.Name(), ".") {
			return filepath.SkipDir
		}
		if e.Name() != "@v" {
			return nil
		}
		rel, err := filepath.Rel(d.root, filepath.Dir(name))
		if err != nil {
			return err
		}
		path, err := module.UnescapePath(filepath.ToSlash(rel))
		if err != nil {
			return filepath.SkipDir // not written by Publish
		}
		vs, err := publishedIn(name, path)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(module.Version{Path: path, Version: v}); err != nil {
				return err
			}
		}
		return filepath.SkipDir
	})
}

// publishedIn returns the versions of path that have an .info in dir.
func publishedIn(dir, path string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var vs []string
	for _, e := range entries {
		ev, ok := strings.CutSuffix(e.Name(), suffixInfo)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		v, err := module.UnescapeVersion(ev)
		if err != nil || checkModule(module.Version{Path: path, Version: v}) != nil {
			continue
		}
		vs = append(vs, v)
	}
	semver.Sort(vs)
	return vs, nil
}
