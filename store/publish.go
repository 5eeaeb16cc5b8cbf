package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sort"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	modzip "golang.org/x/mod/zip"
)

// Publish makes v visible in the store and reports whether this call
// published it.
//
// When Publish returns created == true, every file of the version and the
// updated @v/list are durable. If the version is already published with the
// same zip and go.mod hashes, Publish changes nothing, except that it adds
// the version to @v/list when an earlier Publish stopped just before doing
// so, and returns false and no error; its documents are not replaced. If it
// is published with other hashes, Publish returns a *ConflictError and the
// store is untouched.
//
// Publish verifies the zip once it is in the store, at its final name,
// against v.ZipHash and with zip.CheckZip, and publishes nothing if either
// check fails. If Publish fails or the process dies, the version is either
// not published or completely published, and calling Publish again
// finishes the job.
//
// Errors name the module version; see the sentinel errors for which are
// permanent.
func (d *Dir) Publish(ctx context.Context, v *Version) (created bool, err error) {
	if v == nil {
		return false, fmt.Errorf("store: publish: %w: nil version", ErrInvalid)
	}
	m := v.Module
	if err := checkVersion(v); err != nil {
		return false, err
	}
	ms, err := modHash(v.Mod)
	if err != nil {
		return false, versionError(m, err)
	}
	loc, err := d.locate(m)
	if err != nil {
		return false, versionError(m, err)
	}
	unlock, err := d.lock(ctx)
	if err != nil {
		return false, versionError(m, err)
	}
	defer unlock()

	published, err := exists(loc.file(suffixInfo))
	if err != nil {
		return false, versionError(m, err)
	}
	if published {
		return false, d.republish(ctx, v, loc, ms)
	}
	if err := d.write(ctx, v, loc); err != nil {
		return false, versionError(m, err)
	}
	// The record before .info: the moment the version can be served (to a
	// go command asking for it by version, list or not), the checksum
	// database can prove it.
	if err := d.record(ctx, v); err != nil {
		return false, versionError(m, err)
	}
	if err := d.writeInfo(v, loc); err != nil {
		return false, versionError(m, err)
	}
	if err := d.addToList(loc, m); err != nil {
		return false, versionError(m, err)
	}
	if err := d.after("list"); err != nil {
		return false, versionError(m, err)
	}
	return true, nil
}

// republish handles a Publish of a version that is already published.
func (d *Dir) republish(ctx context.Context, v *Version, loc location, modSum string) error {
	old, err := loc.lookup()
	if err != nil {
		return versionError(v.Module, err)
	}
	if old.ZipHash != v.ZipHash || old.ModHash != modSum {
		return &ConflictError{
			Module: v.Module,
			Old:    *old,
			New:    Published{ZipHash: v.ZipHash, ModHash: modSum, Info: v.Info},
		}
	}
	if err := d.record(ctx, v); err != nil {
		return versionError(v.Module, err)
	}
	if err := d.addToList(loc, v.Module); err != nil {
		return versionError(v.Module, err)
	}
	return nil
}

// write writes the files of a version that is not published, all but
// .info (writeInfo), checking ctx between steps. Until .info exists the
// version is not published: nothing of it is served, and a later Publish
// replaces what a crash left.
func (d *Dir) write(ctx context.Context, v *Version, loc location) error {
	if err := mkdirAll(d.root, loc.dir); err != nil {
		return err
	}
	if err := removeLeftovers(loc); err != nil {
		return err
	}
	step := func(name string, fn func() error) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(); err != nil {
			return err
		}
		return d.after(name)
	}
	if err := step("zip", func() error { return d.writeZip(v, loc) }); err != nil {
		return err
	}
	if err := step("ziphash", func() error {
		return linkBytes(loc.dir, loc.file(suffixZipHash), []byte(v.ZipHash))
	}); err != nil {
		return err
	}
	if err := step("mod", func() error { return linkBytes(loc.dir, loc.file(suffixMod), v.Mod) }); err != nil {
		return err
	}
	docs := make([]string, 0, len(v.Docs))
	for s := range v.Docs {
		docs = append(docs, s)
	}
	sort.Strings(docs)
	for _, s := range docs {
		if err := step("doc"+s, func() error { return linkBytes(loc.dir, loc.file(s), v.Docs[s]) }); err != nil {
			return err
		}
	}
	return nil
}

// writeInfo publishes the version written by write: once .info exists it
// is served, and the rest is only the list, which Publish finishes
// regardless of ctx.
func (d *Dir) writeInfo(v *Version, loc location) error {
	if err := linkBytes(loc.dir, loc.file(suffixInfo), v.Info); err != nil {
		return err
	}
	return d.after("info")
}

// writeZip copies the caller's zip into the store and verifies the copy.
func (d *Dir) writeZip(v *Version, loc location) error {
	src, err := os.Open(v.ZipFile)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() > modzip.MaxZipFile {
		return fmt.Errorf("%w: zip is not a regular file of at most %d bytes", ErrInvalid, modzip.MaxZipFile)
	}
	final := loc.file(suffixZip)
	err = link(loc.dir, final, func(f *os.File) error {
		n, err := io.Copy(f, io.LimitReader(src, modzip.MaxZipFile+1))
		if err == nil && n > modzip.MaxZipFile {
			err = fmt.Errorf("%w: zip is larger than %d bytes", ErrInvalid, modzip.MaxZipFile)
		}
		return err
	})
	if err != nil {
		return err
	}
	if err := verifyZip(v, final); err != nil {
		// Not visible without .info, but an unverified zip should not stay.
		os.Remove(final)
		syncDir(loc.dir)
		return err
	}
	return nil
}

// record runs v.Record, if any, as its own crash point.
func (d *Dir) record(ctx context.Context, v *Version) error {
	if v.Record == nil {
		return nil
	}
	if err := v.Record(ctx); err != nil {
		return fmt.Errorf("recording in the checksum log: %w", err)
	}
	return d.after("record")
}

// addToList makes sure that m.Version is in the list at loc.
func (d *Dir) addToList(loc location, m module.Version) error {
	vs, err := readList(loc.list(), m.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if slices.Contains(vs, m.Version) {
		return nil
	}
	vs = append(vs, m.Version)
	semver.Sort(vs)
	return replace(loc.dir, "list", formatList(vs))
}

func (d *Dir) after(step string) error {
	if d.testHookAfter != nil {
		return d.testHookAfter(step)
	}
	return nil
}
