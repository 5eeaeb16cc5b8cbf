package pipeline

import (
	"errors"
	"fmt"
	"strings"

	"github.com/modgate/modgate/internal/oneline"
)

// Sentinel errors for the checks: a stage's error wraps one (errors.Is), and
// its text becomes the reason of the verdict's Problem.
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

// CheckError is one problem of a verdict as a line: module, version, check
// and reason (Verdict.Lines, what `modgate admit` prints).
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

// reject makes errs a rejection of the job's current check: one problem,
// and one line in the verdict, per error.
func reject(errs ...error) error { return &rejection{errs: errs} }

// security makes err a rejection that is also a security event.
func security(err error) error { return &rejection{errs: []error{securityError{err}}} }

// securityError marks err as a security event for errors.Is(err,
// ErrSecurity) without changing its text: the verdict line already says
// SECURITY.
type securityError struct{ err error }

func (e securityError) Error() string   { return e.err.Error() }
func (e securityError) Unwrap() []error { return []error{ErrSecurity, e.err} }

// rejection marks a stage's errors as permanent until the pipeline turns
// them into problems with the job's coordinates.
type rejection struct{ errs []error }

func (r *rejection) Error() string   { return errors.Join(r.errs...).Error() }
func (r *rejection) Unwrap() []error { return r.errs }

// oneLine folds a multi-line message (git's stderr, say) into one line.
func oneLine(s string) string {
	return oneline.String(strings.ReplaceAll(strings.TrimSpace(s), "\n", "; "), 0)
}
