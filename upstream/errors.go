package upstream

import (
	"context"
	"encoding/base64"
	"errors"
	"io/fs"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/oneline"
	"github.com/modgate/modgate/verifiers/depsum"
)

// Sentinel errors, for errors.Is. Besides these, a version that no proxy
// has satisfies errors.Is(err, fs.ErrNotExist) (see [IsNotFound]), and a
// checksum database that misbehaved wraps [depsum.ErrSecurity].
//
//	sentinel          class
//	ErrMismatch       security: a hash disagrees with the checksum database
//	ErrUnavailable    transient: upstream or the database could not be asked
//	ErrNotInDB        rejection: the checksum database has no record of it
//	ErrInvalid        rejection: not a valid module path or canonical version
//	ErrBadInfo        rejection: the .info document is malformed or wrong
//	ErrBadGoMod       rejection: the .mod file is malformed or not the zip's
//	ErrBadZip         rejection: the zip fails CheckZip or cannot be read
//	ErrTooLarge       rejection: a response is over its size limit
//	ErrRefused        rejection: the proxy refused (a 4xx other than 404/410)
//	ErrConfig         not a verdict: the Fetcher cannot be built
var (
	// ErrMismatch and ErrNotInDB are depsum's: one sentinel each for every
	// checksum disagreement and every missing record, whoever found it.
	ErrMismatch    = depsum.ErrMismatch
	ErrNotInDB     = depsum.ErrNotInDB
	ErrUnavailable = errors.New("temporarily unavailable")
	ErrInvalid     = errors.New("invalid module version")
	ErrBadInfo     = errors.New("bad .info")
	ErrBadGoMod    = errors.New("bad go.mod")
	ErrBadZip      = errors.New("module zip refused")
	ErrTooLarge    = errors.New("response too large")
	ErrRefused     = errors.New("refused by the proxy")
	ErrConfig      = errors.New("upstream misconfigured")
)

// Error is a failure to fetch or prove a module version (for List and
// Latest, a module path). Its Error is one line: module, check, reason.
type Error struct {
	// Module names the module version; Version is empty for List and
	// Latest.
	Module module.Version
	// Check is what failed: "version" (the request itself), "info", "mod",
	// "zip", "checksum-db", "list" or "latest".
	Check string
	Err   error
}

func (e *Error) Error() string {
	return printable(e.Module.String()) + ": " + e.Check + ": " + oneLine(e.Err.Error())
}

func (e *Error) Unwrap() error { return e.Err }

// IsSecurity reports whether err is a security event: a hash that disagrees
// with the checksum database, or a database that misbehaved. Never retry
// one; raise it.
func IsSecurity(err error) bool {
	return errors.Is(err, ErrMismatch) || errors.Is(err, depsum.ErrSecurity)
}

// IsTransient reports whether err may go away on retry: an upstream proxy or
// the checksum database could not be asked (or the context ended). A
// security event is never transient.
func IsTransient(err error) bool {
	if err == nil || IsSecurity(err) {
		return false
	}
	return errors.Is(err, ErrUnavailable) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// IsNotFound reports whether err says that no upstream proxy has the
// version (or module): 404 or 410 from every proxy tried. It is a
// rejection. A version the proxies have but the checksum database does not
// is [ErrNotInDB], not this.
func IsNotFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) && !IsSecurity(err) && !IsTransient(err)
}

// classed gives err a class (a sentinel) for errors.Is without changing its
// text.
type classed struct {
	class error
	err   error
}

func (e *classed) Error() string   { return e.err.Error() }
func (e *classed) Unwrap() []error { return []error{e.class, e.err} }

func class(c, err error) error { return &classed{class: c, err: err} }

// localError is a failure of this machine (a temp file that cannot be
// written): no proxy is to blame, so no other proxy is tried.
type localError struct{ err error }

func (e *localError) Error() string   { return e.err.Error() }
func (e *localError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// retryable marks an upstream failure worth another pass over the proxy
// list: a 5xx, a 429, a timeout, a broken connection.
type retryable struct{ err error }

func (e *retryable) Error() string   { return e.err.Error() }
func (e *retryable) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// redact hides a URL's credentials: a proxy URL may carry a token as its
// user name as well as a password.
func redact(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	c := *u
	c.User = url.User("REDACTED")
	return c.String()
}

// secrets are the strings of a URL's userinfo, in every form a message
// could quote them, for scrub.
func secrets(u *url.URL) []string {
	if u.User == nil {
		return nil
	}
	var s []string
	add := func(v string) {
		if len(v) >= 4 { // shorter ones would mangle messages and hide little
			s = append(s, v, url.QueryEscape(v), url.PathEscape(v))
		}
	}
	add(u.User.Username())
	if p, ok := u.User.Password(); ok {
		add(p)
	}
	// As sent in the Authorization header, which a server might echo.
	p, _ := u.User.Password()
	add(base64.StdEncoding.EncodeToString([]byte(u.User.Username() + ":" + p)))
	return s
}

// scrub removes secrets from a message that quotes text a server chose or a
// library formatted.
func scrub(msg string, secrets []string) string {
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "REDACTED")
	}
	return msg
}

// printable quotes s if it holds anything but printable, non-space
// characters: module paths and versions in requests are hostile input.
func printable(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) || !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	return s
}

// oneLine is s on one line, at most 600 bytes.
func oneLine(s string) string { return oneline.String(s, 600) }
