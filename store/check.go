package store

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/modgate/modgate/internal/gosum"
	"github.com/modgate/modgate/internal/memo"
)

// checkModule refuses anything but a valid module path with a canonical
// version that agrees with the path's major version suffix.
//
// Valid versions are remembered (module.Check is a pure function, and
// costs a few microseconds: a re-verification run asks it twice for every
// version of the store).
func checkModule(m module.Version) error {
	if _, ok := validModules.Get(m); ok {
		return nil
	}
	err := module.Check(m.Path, m.Version)
	if err == nil && module.CanonicalVersion(m.Version) == m.Version {
		validModules.Add(m, struct{}{})
		return nil
	}
	if err == nil {
		err = errors.New("version is not canonical")
	}
	var me *module.ModuleError
	if errors.As(err, &me) {
		err = me.Err // module.Check names the module; VersionError below does it once
	}
	return module.VersionError(m, fmt.Errorf("%w: %w", ErrInvalid, err))
}

// checkVersion checks everything about v that can be checked before taking
// the lock. The zip's content is checked once it is in the store.
func checkVersion(v *Version) error {
	m := v.Module
	if err := checkModule(m); err != nil {
		return err
	}
	if !isH1(v.ZipHash) {
		return invalid(m, "zip hash is not an h1: hash")
	}
	if len(v.Mod) == 0 || len(v.Mod) > modzip.MaxGoMod {
		return invalid(m, "go.mod is empty or larger than %d bytes", modzip.MaxGoMod)
	}
	// The go command refuses a go.mod that declares another path.
	if got := modfile.ModulePath(v.Mod); got != m.Path {
		return invalid(m, "go.mod declares module %q", got)
	}
	if len(v.Info) > maxInfo {
		return invalid(m, ".info is larger than %d bytes", maxInfo)
	}
	// The go command refuses .info naming another version than it asked for.
	var info struct{ Version string }
	if err := json.Unmarshal(v.Info, &info); err != nil {
		return invalid(m, ".info: %v", err)
	}
	if info.Version != m.Version {
		return invalid(m, ".info names version %q", info.Version)
	}
	if v.ZipFile == "" {
		return invalid(m, "no zip file")
	}
	for suffix, data := range v.Docs {
		if !IsDoc(suffix) {
			return invalid(m, "document suffix %q is not allowed", suffix)
		}
		if len(data) > maxDoc {
			return invalid(m, "document %s is larger than %d bytes", suffix, maxDoc)
		}
	}
	return nil
}

// isH1 reports whether h is "h1:" and a base64 SHA-256.
func isH1(h string) bool {
	b64, ok := strings.CutPrefix(h, "h1:")
	if !ok || len(b64) != base64.StdEncoding.EncodedLen(32) {
		return false
	}
	sum, err := base64.StdEncoding.DecodeString(b64)
	return err == nil && len(sum) == 32
}

// modHash is the go.sum "/go.mod" hash of a go.mod file.
func modHash(mod []byte) (string, error) { return gosum.ModHash(mod), nil }

// verifyZip checks the zip file that is about to be published, at its
// final name: these are the bytes that will be served.
func verifyZip(v *Version, name string) error {
	h, err := dirhash.HashZip(name, dirhash.Hash1)
	if err != nil {
		return fmt.Errorf("%w: hashing zip: %w", ErrInvalid, err)
	}
	if h != v.ZipHash {
		return fmt.Errorf("%w: stored zip hashes to %s, want %s", ErrHashMismatch, h, v.ZipHash)
	}
	if _, err := modzip.CheckZip(v.Module, name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return checkZipGoMod(v, name)
}

// checkZipGoMod makes sure that the .mod served beside the zip is the
// go.mod inside it, so the two cannot tell different stories. A zip without
// go.mod (a legacy +incompatible version) has a synthesized .mod.
func checkZipGoMod(v *Version, name string) error {
	z, err := zip.OpenReader(name)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	defer z.Close()
	want := v.Module.Path + "@" + v.Module.Version + "/go.mod"
	for _, f := range z.File {
		if f.Name != want {
			continue
		}
		r, err := f.Open()
		if err != nil {
			return fmt.Errorf("%w: zip go.mod: %w", ErrInvalid, err)
		}
		defer r.Close()
		data, err := io.ReadAll(io.LimitReader(r, modzip.MaxGoMod+1))
		if err != nil {
			return fmt.Errorf("%w: zip go.mod: %w", ErrInvalid, err)
		}
		if !bytes.Equal(data, v.Mod) {
			return fmt.Errorf("%w: go.mod differs from the go.mod in the zip", ErrInvalid)
		}
		return nil
	}
	return nil
}

// validModules are module versions checkModule passed.
var validModules = memo.Map[module.Version, struct{}]{Max: 1 << 16}

// maxPlaces bounds a Dir's places: about 150 bytes a version.
const maxPlaces = 1 << 17
