package depsum

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/modgate/modgate/internal/oneline"
)

// Sentinel errors. Every [*Problem] wraps exactly one of them.
//
//	sentinel         class                     meaning
//	ErrMismatch      permanent, security       a go.sum line disagrees with the database
//	ErrSecurity      permanent, security       the database misbehaved (fork, rollback, forged data)
//	ErrMissing       permanent                 a requirement has no go.sum line
//	ErrLocalReplace  permanent                 go.mod replaces a module by a local directory
//	ErrNotInDB       permanent                 the database has no record of a dependency
//	ErrBadGoSum      permanent                 go.sum is malformed
//	ErrBadGoMod      permanent                 go.mod is malformed or names another module
//	ErrUnavailable   transient                 the database could not be asked; retry later
//
// [ErrConfig] is not a Problem: it says the [Checker] cannot check at all.
var (
	// ErrMismatch: a go.sum line names a hash the checksum database does not
	// hold for that module version. The code the module was built and tested
	// with is not what everyone else gets: a security event.
	ErrMismatch = errors.New("SECURITY ERROR: checksum mismatch")

	// ErrSecurity: the checksum database misbehaved: it presented a tree
	// inconsistent with one it signed earlier (a fork, or a rollback to a
	// different history), or data that its own signed tree does not
	// authenticate. Nothing it says can be trusted; retrying does not help.
	ErrSecurity = errors.New("SECURITY ERROR: checksum database misbehaved")

	// ErrMissing: a requirement in go.mod has no go.sum line that the go
	// command would need to build the module with -mod=readonly.
	ErrMissing = errors.New("missing go.sum line")

	// ErrLocalReplace: go.mod replaces a module with a local directory, whose
	// contents no go.sum line and no checksum database can pin.
	ErrLocalReplace = errors.New("replaced by a local directory")

	// ErrNotInDB: the authoritative checksum database has no record of the
	// dependency's version. For a private dependency it means modgate never
	// admitted that version.
	ErrNotInDB = errors.New("not in checksum database")

	// ErrBadGoSum: go.sum is not well-formed (see [ParseGoSum]).
	ErrBadGoSum = errors.New("malformed go.sum")

	// ErrBadGoMod: go.mod does not parse, or is not the go.mod of the module
	// being checked.
	ErrBadGoMod = errors.New("malformed go.mod")

	// ErrUnavailable: a checksum database could not be asked (unreachable,
	// timeout, 5xx, local cache I/O). Transient: the verdict is unknown, not
	// negative.
	ErrUnavailable = errors.New("checksum database unavailable")

	// ErrConfig: the Checker or a SumDB is configured so that it cannot check
	// (for example a public dependency and no public database). It is not a
	// verdict on the module: do not reject the module, fix the configuration.
	ErrConfig = errors.New("depsum misconfigured")
)

// Problem is one failed check for one dependency.
type Problem struct {
	// Path and Version name the dependency (Version without "/go.mod"). Both
	// are empty for problems of the file as a whole (a malformed go.sum);
	// Version is empty for a replace directive that covers all versions.
	Path, Version string
	// Check names the check that failed: "go.mod", "go.sum", "replace",
	// "require" or "checksum".
	Check string
	// Err is the reason. It wraps exactly one of the sentinel errors.
	Err error
}

// Error is one line: dependency, check, reason.
func (p *Problem) Error() string {
	var b strings.Builder
	if p.Path != "" {
		b.WriteString(p.Path)
		if p.Version != "" {
			b.WriteString("@")
			b.WriteString(p.Version)
		}
		b.WriteString(": ")
	}
	b.WriteString(p.Check)
	b.WriteString(": ")
	b.WriteString(oneLine(p.Err.Error()))
	return b.String()
}

func (p *Problem) Unwrap() error { return p.Err }

// Transient reports whether the problem may go away on retry.
func (p *Problem) Transient() bool { return isTransientCause(p.Err) }

// CheckErrors is the error [Checker.Check] returns when any check failed. It
// holds every problem found, in a stable order: go.mod problems in go.mod
// order, then go.sum problems in go.sum order.
type CheckErrors struct {
	Problems []*Problem
}

// maxListed bounds how many problems Error spells out: the full list stays in
// Problems.
const maxListed = 10

// Error is one line listing the problems.
func (e *CheckErrors) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		return e.Problems[0].Error()
	}
	fmt.Fprintf(&b, "%d dependency problems: ", len(e.Problems))
	for i, p := range e.Problems {
		if i == maxListed {
			fmt.Fprintf(&b, "; and %d more", len(e.Problems)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As see every problem.
func (e *CheckErrors) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// IsTransient reports whether err is a failure worth retrying rather than a
// verdict: every problem in it is [ErrUnavailable] (or the context ended).
// A result with any permanent problem is not transient: that problem would
// stand after a retry. A security problem is never transient.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var ce *CheckErrors
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			if !p.Transient() {
				return false
			}
		}
		return len(ce.Problems) > 0
	}
	return isTransientCause(err)
}

func isTransientCause(err error) bool {
	if errors.Is(err, ErrMismatch) || errors.Is(err, ErrSecurity) {
		return false
	}
	return errors.Is(err, ErrUnavailable) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// IsSecurity reports whether err holds a security event: a checksum mismatch
// or a misbehaving checksum database.
func IsSecurity(err error) bool {
	return errors.Is(err, ErrMismatch) || errors.Is(err, ErrSecurity)
}

// oneLine is s on one line, at most 600 bytes.
func oneLine(s string) string { return oneline.String(s, 600) }
