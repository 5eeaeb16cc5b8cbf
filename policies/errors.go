package policies

import (
	"errors"
	"fmt"
)

// Error is one problem with a policy file, located in the file:
//
//	policies/signers.yaml:12:27: rule "release-team": undefined field 'signer_grup'
//
// Load, Parse and Compile return every problem they find, joined with
// errors.Join; Errors takes them apart again.
type Error struct {
	File string // as given to Parse or found by Load
	// Line and Col are 1-based; 0 when unknown.
	Line, Col int
	Rule      string // "" for problems outside a rule
	Err       string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += fmt.Sprintf(":%d", e.Line)
		if e.Col > 0 {
			loc += fmt.Sprintf(":%d", e.Col)
		}
	}
	if e.Rule != "" {
		return fmt.Sprintf("%s: rule %q: %s", loc, e.Rule, e.Err)
	}
	return fmt.Sprintf("%s: %s", loc, e.Err)
}

// Errors returns every *Error in err, which Load, Parse or Compile
// returned.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if u := errors.Unwrap(err); u != nil {
			walk(u)
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}
