package upstream

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/modgate/modgate/internal/gosum"
	"github.com/modgate/modgate/verifiers/depsum"
)

// dbError classifies a failed lookup (see the depsum.DB contract).
func (f *Fetcher) dbError(err error) error {
	switch {
	case errors.Is(err, depsum.ErrSecurity), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, fs.ErrNotExist):
		// %v: not found upstream is IsNotFound; this is a rejection.
		return fmt.Errorf("%w: %s has no record of it: %v", ErrNotInDB, f.dbName(), err)
	default:
		return class(ErrUnavailable, err)
	}
}

func (f *Fetcher) dbName() string {
	if n, ok := f.opts.DB.(interface{ Name() string }); ok && n.Name() != "" {
		return n.Name()
	}
	return "the checksum database"
}

// compare checks a hash against the database's lines for m: what is "zip"
// or "go.mod".
func (f *Fetcher) compare(m module.Version, what, hash string, from *proxy, lines []string) error {
	key := m.Path + " " + m.Version
	if what == "go.mod" {
		key += "/go.mod"
	}
	var have []string
	for _, l := range lines {
		i := strings.LastIndexByte(l, ' ')
		if i < 0 || l[:i] != key || !strings.HasPrefix(l[i+1:], "h1:") {
			continue
		}
		if l[i+1:] == hash {
			return nil
		}
		have = append(have, l[i+1:])
	}
	if len(have) == 0 {
		return fmt.Errorf("%w: %s has a record of %s but no %s hash", ErrNotInDB, f.dbName(), m, what)
	}
	return fmt.Errorf("%w: %s %s from upstream %s, %s in %s", ErrMismatch, what, hash, from.shown, strings.Join(have, " or "), f.dbName())
}

// hashGoMod is the go.sum hash of a go.mod file, as the go command computes
// it.
func hashGoMod(gomod []byte) (string, error) { return gosum.ModHash(gomod), nil }

// hashZip is dirhash.HashZip, the go command's zip hash, after checking that
// the entries declare no more than zip.MaxZipFile bytes in all: hashing
// reads every entry, and archive/zip holds each to its declared size. This
// runs before CheckZip (which sums only the entries it accepts), so that a
// tampered zip is reported as a mismatch even when it is also malformed.
func hashZip(file string) (string, error) {
	z, err := zip.OpenReader(file)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadZip, err)
	}
	var total uint64
	for _, e := range z.File {
		total += e.UncompressedSize64
		if e.UncompressedSize64 > modzip.MaxZipFile || total > modzip.MaxZipFile {
			z.Close()
			return "", fmt.Errorf("%w: entries declare more than %d bytes in all", ErrBadZip, modzip.MaxZipFile)
		}
	}
	z.Close()
	h, err := dirhash.HashZip(file, dirhash.Hash1)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadZip, err)
	}
	return h, nil
}

// checkGoMod checks the .mod file against the zip: it must be the zip's
// go.mod, or for a zip without one, what the go command serves for such a
// module (cmd/go/internal/modfetch.LegacyGoMod: a module directive and
// nothing else; sum.golang.org's go.mod hashes of such modules are of that
// file). It must also declare m's path, as the go command requires of a
// dependency's go.mod.
func checkGoMod(m module.Version, gomod []byte, zipPath string) error {
	inZip, found, err := readZipGoMod(zipPath, m)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadZip, err)
	}
	if !found {
		inZip = []byte(fmt.Sprintf("module %s\n", modfile.AutoQuote(m.Path)))
		if !bytes.Equal(gomod, inZip) {
			return fmt.Errorf("%w: the zip has no go.mod, so the .mod file must be %q (as the go command makes it), not the %d bytes served", ErrBadGoMod, inZip, len(gomod))
		}
		return nil
	}
	if !bytes.Equal(gomod, inZip) {
		return fmt.Errorf("%w: the .mod file differs from the go.mod in the zip", ErrBadGoMod)
	}
	f, err := modfile.ParseLax("go.mod", gomod, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadGoMod, err)
	}
	if f.Module == nil {
		return fmt.Errorf("%w: no module directive", ErrBadGoMod)
	}
	if f.Module.Mod.Path != m.Path {
		return fmt.Errorf("%w: it declares module path %q, so the go command refuses it as %s", ErrBadGoMod, f.Module.Mod.Path, m.Path)
	}
	return nil
}

// readZipGoMod reads the go.mod at the root of m's zip, if there is one.
// CheckZip has made sure there is at most one, of at most MaxGoMod bytes.
func readZipGoMod(zipPath string, m module.Version) ([]byte, bool, error) {
	z, err := zip.OpenReader(zipPath)
	if err != nil {
		return nil, false, err
	}
	defer z.Close()
	name := m.Path + "@" + m.Version + "/go.mod"
	for _, e := range z.File {
		if e.Name != name {
			continue
		}
		rc, err := e.Open()
		if err != nil {
			return nil, false, err
		}
		defer rc.Close()
		data, err := io.ReadAll(io.LimitReader(rc, modzip.MaxGoMod+1))
		return data, true, err
	}
	return nil, false, nil
}
