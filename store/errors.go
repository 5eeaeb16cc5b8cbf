package store

import (
	"errors"
	"fmt"

	"golang.org/x/mod/module"
)

// Sentinel errors, for errors.Is. All of them are permanent: retrying the
// same Publish gives the same answer. Any other error from Publish (I/O, a
// cancelled context, a busy lock) is transient and the Publish may be retried.
var (
	// ErrConflict means that the module version is already published with
	// different content: a moved tag, to be treated as a security event.
	ErrConflict = errors.New("already published with different content")

	// ErrInvalid means that the input was refused before anything was
	// published: a bad module path or version, a document suffix outside the
	// allow-list, malformed .info, go.mod or zip.
	ErrInvalid = errors.New("invalid input")

	// ErrHashMismatch means that the zip in the store does not hash to the
	// h1: hash that the caller verified, so it was not published.
	ErrHashMismatch = errors.New("zip hash mismatch")

	// ErrCorrupt means that the store itself is inconsistent: a published
	// version lacks a file, or a file exceeds its size bound. An operator has
	// to look; the store never repairs a published version by itself.
	ErrCorrupt = errors.New("store is inconsistent")
)

// A ConflictError reports an attempt to publish a module version again with
// different hashes. The stored version is left untouched.
type ConflictError struct {
	Module module.Version
	Old    Published // what the store holds
	New    Published // what was offered
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s: %v: stored zip %s go.mod %s, offered zip %s go.mod %s",
		e.Module, ErrConflict, e.Old.ZipHash, e.Old.ModHash, e.New.ZipHash, e.New.ModHash)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// invalid returns an ErrInvalid error for m.
func invalid(m module.Version, format string, args ...any) error {
	return module.VersionError(m, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...)))
}

// versionError names m in err unless err already names a module.
func versionError(m module.Version, err error) error {
	var me *module.ModuleError
	var ce *ConflictError
	if errors.As(err, &me) || errors.As(err, &ce) {
		return err
	}
	return module.VersionError(m, err)
}
