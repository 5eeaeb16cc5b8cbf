package pipeline

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors for the checks, usable with errors.Is on a CheckError.
var (
	ErrRepoNotAllowed     = errors.New("repository not allowed by configuration")
	ErrModuleNotAllowed   = errors.New("repository not authorized for module path")
	ErrBadTag             = errors.New("bad tag")
	ErrNotAnnotated       = errors.New("not an annotated tag")
	ErrBadVersion         = errors.New("bad version")
	ErrBadGoMod           = errors.New("bad go.mod")
	ErrUntrustedSigner    = errors.New("signer not trusted for module path")
	ErrBadZip             = errors.New("module zip refused")
	ErrMovedTag           = errors.New("version already published with different content")
	ErrSecurity           = errors.New("security event")
	errNoSignerConfigured = errors.New("no signer is configured for module path")
)

// CheckError is a rejection: a permanent failure of one check for one
// module version. Its Error is one line naming module, version, check and
// reason.
type CheckError struct {
	Module   string // module path, or the repository when not yet known
	Version  string // version, or the tag when not yet known
	Check    string // stage name
	Security bool   // a security event: a moved tag, a forged signature…
	Err      error
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("%s@%s: %s: %s", e.Module, e.Version, e.Check, oneLine(e.Err.Error()))
}

func (e *CheckError) Unwrap() error { return e.Err }

// reject makes err a rejection of the job's current check.
func reject(err error) error { return &rejection{err: err} }

// security makes err a rejection that is also a security event.
func security(err error) error {
	return &rejection{err: fmt.Errorf("%w: %w", ErrSecurity, err), security: true}
}

// rejection marks a stage's error as permanent until the pipeline wraps it in
// a CheckError with the job's coordinates.
type rejection struct {
	err      error
	security bool
}

func (r *rejection) Error() string { return r.err.Error() }
func (r *rejection) Unwrap() error { return r.err }

// IsRejection reports whether err is a permanent rejection rather than a
// transient failure.
func IsRejection(err error) bool {
	var ce *CheckError
	var r *rejection
	return errors.As(err, &ce) || errors.As(err, &r)
}

// oneLine folds a multi-line message (git's stderr, say) into one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
