package policies

import (
	"fmt"
	"go/version"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"github.com/github/go-spdx/v2/spdxexp"
	"golang.org/x/mod/semver"
)

// constantProblem is a constant argument of a helper that would make every
// evaluation fail or silently never match: a typo in an allow list, a
// version without its "v". Found at compile time, it is an error there;
// at runtime it would deny every module the rule applies to.
type constantProblem struct {
	loc common.Location
	msg string
}

// lintConstants checks the constant arguments of the helpers in a.
func lintConstants(a *cel.Ast) []constantProblem {
	native := a.NativeRep()
	info := native.SourceInfo()
	var out []constantProblem
	report := func(e ast.Expr, format string, args ...any) {
		out = append(out, constantProblem{loc: info.GetStartLocation(e.ID()), msg: fmt.Sprintf(format, args...)})
	}
	ast.PreOrderVisit(native.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.CallKind {
			return
		}
		call := e.AsCall()
		args := call.Args()
		switch fn := call.FunctionName(); fn {
		case "module.matches":
			for _, el := range constantList(args, 1) {
				if s, ok := constantString(el); ok {
					if err := checkPattern(s); err != nil {
						report(el, "module.matches: %v", err)
					}
				}
			}
		case "licenses.allowed":
			for _, el := range constantList(args, 1) {
				s, ok := constantString(el)
				if !ok {
					continue
				}
				if strings.Contains(strings.ToUpper(s), " OR ") || strings.Contains(strings.ToUpper(s), " AND ") {
					report(el, "licenses.allowed: allow list entry %q is an expression; list single licenses", s)
					continue
				}
				if valid, _ := spdxexp.ValidateLicenses([]string{s}); !valid {
					report(el, "licenses.allowed: allow list entry %q is not an SPDX license identifier", s)
				}
			}
		case "semver.compare", "semver.isPrerelease":
			for _, arg := range args {
				if s, ok := constantString(arg); ok && !semver.IsValid(s) {
					report(arg, "%s: %q is not a semantic version (vMAJOR.MINOR.PATCH)", fn, s)
				}
			}
		case "goversion.compare":
			for _, arg := range args {
				if s, ok := constantString(arg); ok {
					v := s
					if !strings.HasPrefix(v, "go") {
						v = "go" + v
					}
					if !version.IsValid(v) {
						report(arg, "goversion.compare: %q is not a Go version (1.22, 1.22.3, go1.23rc1)", s)
					}
				}
			}
		}
	}))
	return out
}

// constantList returns the elements of args[i] if it is a list literal.
func constantList(args []ast.Expr, i int) []ast.Expr {
	if i >= len(args) || args[i].Kind() != ast.ListKind {
		return nil
	}
	return args[i].AsList().Elements()
}

func constantString(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}
