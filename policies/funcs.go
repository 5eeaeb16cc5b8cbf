package policies

import (
	"fmt"
	"go/version"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"github.com/github/go-spdx/v2/spdxexp"
	"golang.org/x/mod/semver"

	"github.com/modgate/modgate/internal/modmatch"
)

// The helper functions policies may call besides CEL's standard library.
// REFERENCE.md documents them for policy authors. Each returns an error,
// never a guess, for an argument it cannot read (an invalid version, an
// unparsable license expression): the rule then errors, and an erroring rule
// denies.

// Overload ids, also the keys of the runtime cost model.
const (
	ovSemverCompare     = "semver_compare_string_string"
	ovSemverValid       = "semver_is_valid_string"
	ovSemverPrerelease  = "semver_is_prerelease_string"
	ovGoVersionCompare  = "goversion_compare_string_string"
	ovModuleMatches     = "module_matches_string_list"
	ovLicensesAllowed   = "licenses_allowed_string_list"
	ovLicensesValid     = "licenses_valid_string"
	ovAge               = "age_timestamp"
	ovKnown             = "known_timestamp"
	maxLicenseExprLen   = 1024
	maxLicenseExprTerms = 16
)

// helpers declares the helper functions. age is bound per evaluation (it
// reads the evaluation's now): see lateBound.
func helpers() []cel.EnvOption {
	str, list, ts := cel.StringType, cel.ListType(cel.StringType), cel.TimestampType
	return []cel.EnvOption{
		cel.Function("semver.compare",
			cel.Overload(ovSemverCompare, []*cel.Type{str, str}, cel.IntType, cel.BinaryBinding(semverCompare))),
		cel.Function("semver.isValid",
			cel.Overload(ovSemverValid, []*cel.Type{str}, cel.BoolType, cel.UnaryBinding(semverIsValid))),
		cel.Function("semver.isPrerelease",
			cel.Overload(ovSemverPrerelease, []*cel.Type{str}, cel.BoolType, cel.UnaryBinding(semverIsPrerelease))),
		cel.Function("goversion.compare",
			cel.Overload(ovGoVersionCompare, []*cel.Type{str, str}, cel.IntType, cel.BinaryBinding(goVersionCompare))),
		cel.Function("module.matches",
			cel.Overload(ovModuleMatches, []*cel.Type{str, list}, cel.BoolType, cel.BinaryBinding(moduleMatches))),
		cel.Function("licenses.allowed",
			cel.Overload(ovLicensesAllowed, []*cel.Type{str, list}, cel.BoolType, cel.BinaryBinding(licensesAllowed))),
		cel.Function("licenses.valid",
			cel.Overload(ovLicensesValid, []*cel.Type{str}, cel.BoolType, cel.UnaryBinding(licensesValid))),
		cel.Function("age",
			cel.Overload(ovAge, []*cel.Type{ts}, cel.DurationType, cel.LateFunctionBinding())),
		cel.Function("known",
			cel.Overload(ovKnown, []*cel.Type{ts}, cel.BoolType, cel.UnaryBinding(known))),
	}
}

// lateBound returns the implementations of the functions that depend on the
// evaluation: age measures from now, not from the wall clock, so a decision
// can be reproduced.
func lateBound(now time.Time) map[string]cel.LateBoundFunction {
	return map[string]cel.LateBoundFunction{
		"age": func(_ string, args ...ref.Val) ref.Val {
			t, ok := args[0].(types.Timestamp)
			if !ok {
				return types.MaybeNoSuchOverloadErr(args[0])
			}
			if unknownTime(t.Time) {
				return types.NewErr("age: time unknown; guard with known(t)")
			}
			return types.Duration{Duration: now.Sub(t.Time)}
		},
	}
}

func semverArg(fn string, v ref.Val) (string, ref.Val) {
	s, ok := v.(types.String)
	if !ok {
		return "", types.MaybeNoSuchOverloadErr(v)
	}
	if !semver.IsValid(string(s)) {
		return "", types.NewErr("%s: %q is not a semantic version (vMAJOR.MINOR.PATCH)", fn, clip(string(s)))
	}
	return string(s), nil
}

func semverCompare(a, b ref.Val) ref.Val {
	x, err := semverArg("semver.compare", a)
	if err != nil {
		return err
	}
	y, err := semverArg("semver.compare", b)
	if err != nil {
		return err
	}
	return types.Int(semver.Compare(x, y))
}

func semverIsValid(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	return types.Bool(semver.IsValid(string(s)))
}

func semverIsPrerelease(v ref.Val) ref.Val {
	s, err := semverArg("semver.isPrerelease", v)
	if err != nil {
		return err
	}
	return types.Bool(semver.Prerelease(s) != "")
}

// goVersionArg accepts a go or toolchain directive's version, with or
// without the "go" prefix: "1.22", "1.22.3", "go1.23rc1".
func goVersionArg(v ref.Val) (string, ref.Val) {
	s, ok := v.(types.String)
	if !ok {
		return "", types.MaybeNoSuchOverloadErr(v)
	}
	x := string(s)
	if !strings.HasPrefix(x, "go") {
		x = "go" + x
	}
	if !version.IsValid(x) {
		return "", types.NewErr("goversion.compare: %q is not a Go version (1.22, 1.22.3, go1.23rc1)", clip(string(s)))
	}
	return x, nil
}

func goVersionCompare(a, b ref.Val) ref.Val {
	x, err := goVersionArg(a)
	if err != nil {
		return err
	}
	y, err := goVersionArg(b)
	if err != nil {
		return err
	}
	return types.Int(version.Compare(x, y))
}

// stringList returns the strings of a CEL list<string>.
func stringList(fn string, v ref.Val) ([]string, ref.Val) {
	l, ok := v.(traits.Lister)
	if !ok {
		return nil, types.MaybeNoSuchOverloadErr(v)
	}
	n, ok := l.Size().(types.Int)
	if !ok {
		return nil, types.NewErr("%s: list without a size", fn)
	}
	out := make([]string, 0, int(n))
	for i := types.Int(0); i < n; i++ {
		s, ok := l.Get(i).(types.String)
		if !ok {
			return nil, types.NewErr("%s: list element %d is not a string", fn, i)
		}
		out = append(out, string(s))
	}
	return out, nil
}

func moduleMatches(path, patterns ref.Val) ref.Val {
	p, ok := path.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(path)
	}
	l, ok := patterns.(traits.Lister)
	if !ok {
		return types.MaybeNoSuchOverloadErr(patterns)
	}
	n, _ := l.Size().(types.Int)
	matched := false
	for i := types.Int(0); i < n; i++ {
		pat, ok := l.Get(i).(types.String)
		if !ok {
			return types.NewErr("module.matches: list element %d is not a string", i)
		}
		// Every pattern is checked, not just those before a match: a
		// malformed pattern would otherwise never match, silently.
		if err := validPattern(string(pat)); err != nil {
			return types.NewErr("module.matches: %v", err)
		}
		if !matched && modmatch.Match(string(pat), string(p)) {
			matched = true
		}
	}
	return types.Bool(matched)
}

// validPattern is checkPattern, remembered: a policy names the same few
// patterns for every dependency of every admission.
func validPattern(p string) error {
	patternCache.mu.RLock()
	err, hit := patternCache.m[p]
	patternCache.mu.RUnlock()
	if hit {
		return err
	}
	err = checkPattern(p)
	patternCache.mu.Lock()
	if len(patternCache.m) >= maxCached {
		clear(patternCache.m)
	}
	patternCache.m[p] = err
	patternCache.mu.Unlock()
	return err
}

var patternCache = struct {
	mu sync.RWMutex
	m  map[string]error
}{m: map[string]error{}}

// checkLicenseExpr bounds an SPDX expression: Satisfies expands it into
// every combination of its OR terms, which grows exponentially with the
// number of terms, and the expressions come from the module's own files.
func checkLicenseExpr(fn, expr string) ref.Val {
	if len(expr) > maxLicenseExprLen {
		return types.NewErr("%s: license expression is %d bytes, over the limit of %d", fn, len(expr), maxLicenseExprLen)
	}
	terms := 0
	for _, tok := range strings.FieldsFunc(expr, func(r rune) bool { return r == ' ' || r == '(' || r == ')' }) {
		switch strings.ToUpper(tok) {
		case "AND", "OR", "WITH":
		default:
			terms++
		}
	}
	if terms > maxLicenseExprTerms {
		return types.NewErr("%s: license expression has %d terms, over the limit of %d", fn, terms, maxLicenseExprTerms)
	}
	return nil
}

func licensesAllowed(exprv, allowv ref.Val) ref.Val {
	expr, ok := exprv.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(exprv)
	}
	l, ok := allowv.(traits.Lister)
	if !ok {
		return types.MaybeNoSuchOverloadErr(allowv)
	}
	// The key is built on the stack and looked up without allocating:
	// this runs for every license of every dependency.
	var buf [512]byte
	key := append(buf[:0], expr...)
	n, _ := l.Size().(types.Int)
	for i := types.Int(0); i < n; i++ {
		s, ok := l.Get(i).(types.String)
		if !ok {
			return types.NewErr("licenses.allowed: list element %d is not a string", i)
		}
		key = append(key, 0)
		key = append(key, s...)
	}
	spdxCache.mu.RLock()
	r, hit := spdxCache.m[string(key)]
	spdxCache.mu.RUnlock()
	if !hit {
		r = satisfies(string(expr), l)
		spdxCache.mu.Lock()
		if len(spdxCache.m) >= maxCached {
			clear(spdxCache.m) // crude, but bounded; a policy asks few questions
		}
		spdxCache.m[string(key)] = r
		spdxCache.mu.Unlock()
	}
	if r.err != "" {
		return types.NewErr("%s", r.err)
	}
	return types.Bool(r.ok)
}

// satisfies answers licenses.allowed, uncached.
func satisfies(expr string, l traits.Lister) satisfied {
	allow, errv := stringList("licenses.allowed", l)
	if errv != nil {
		return satisfied{err: fmt.Sprint(errv)}
	}
	if errv := checkLicenseExpr("licenses.allowed", expr); errv != nil {
		return satisfied{err: fmt.Sprint(errv)}
	}
	if len(allow) == 0 {
		return satisfied{err: "licenses.allowed: the allow list is empty"}
	}
	ok, err := spdxexp.Satisfies(expr, allow)
	if err != nil {
		return satisfied{err: fmt.Sprintf("licenses.allowed(%q): %v", clip(expr), err)}
	}
	return satisfied{ok: ok}
}

// spdxCache remembers licenses.allowed answers: spdxexp.Satisfies
// compiles regular expressions on every call, microseconds each, and a
// policy asks the same few questions (MIT under the allow list?) for every
// dependency of every admission. The answers depend on the arguments only.
var spdxCache = struct {
	mu sync.RWMutex
	m  map[string]satisfied
}{m: map[string]satisfied{}}

const maxCached = 4096

type satisfied struct {
	ok  bool
	err string
}

func licensesValid(exprv ref.Val) ref.Val {
	expr, ok := exprv.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(exprv)
	}
	if checkLicenseExpr("licenses.valid", string(expr)) != nil {
		return types.False
	}
	valid, _ := spdxexp.ValidateLicenses([]string{string(expr)})
	return types.Bool(valid)
}

func known(v ref.Val) ref.Val {
	t, ok := v.(types.Timestamp)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	return types.Bool(!unknownTime(t.Time))
}

// unknownTime reports a time the input did not set. CEL reads an unset
// time.Time field as timestamp(0), 1970-01-01T00:00:00Z, not as Go's zero
// time, so both mean unknown; no module version is that old.
func unknownTime(t time.Time) bool {
	return t.IsZero() || t.Equal(time.Unix(0, 0))
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
