package policies

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	"cel.dev/cel-go/common/types"
)

// Config bounds what a policy set may cost. The zero Config is usable: every
// zero field takes its default.
type Config struct {
	// CostLimit bounds the runtime cost of evaluating one rule, or one
	// message expression, on one input, in CEL cost units (one unit is
	// roughly one simple operation; a unit of field access on the input
	// takes about 100ns, so the default is about a second). A rule that
	// reaches it is stopped and denies. The example policies cost about
	// 1,100,000 on an input of 10,000 dependencies, and a few thousand on a
	// typical one. Default: 10,000,000.
	CostLimit uint64
	// MaxEstimatedCost refuses, at compile time, a rule whose worst-case
	// cost exceeds it, estimated on an input with every list and string at
	// its limit at once: a linear pass over the dependencies estimates at
	// up to a few tens of millions, nested loops over them at billions.
	// Default: 10 × CostLimit.
	MaxEstimatedCost uint64
	// Limits bound the input; Evaluate denies an input over them.
	Limits Limits
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.CostLimit == 0 {
		c.CostLimit = 10_000_000
	}
	if c.MaxEstimatedCost == 0 {
		c.MaxEstimatedCost = 10 * c.CostLimit
	}
	c.Limits = c.Limits.WithDefaults()
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.MaxEstimatedCost < c.CostLimit:
		return fmt.Errorf("policies: max estimated cost %d is below the cost limit %d", c.MaxEstimatedCost, c.CostLimit)
	case c.Limits.MaxList < 0, c.Limits.MaxLicenses < 0, c.Limits.MaxString < 0:
		return fmt.Errorf("policies: negative input limit")
	}
	return nil
}

// Set is a compiled set of policy files. It is immutable and safe for
// concurrent Evaluate calls.
type Set struct {
	cfg      Config
	env      *cel.Env
	files    []*compiledFile
	digest   string
	usesTime bool // a rule reads the time (UsesTime)
}

type compiledFile struct {
	*File
	patterns string // for module.MatchPrefixPatterns
	rules    []*compiledRule
}

type compiledRule struct {
	*Rule
	prg cel.Program
	msg message
	// usesTime: the expression reads now or calls age, so its result may
	// change with the time of evaluation alone.
	usesTime bool
}

// Load reads the policy files (*.yaml, *.yml; not recursive, names starting
// with "." ignored) of dir and compiles them with the default Config.
func Load(dir string) (*Set, error) { return Config{}.Load(dir) }

// Compile compiles parsed policy files with the default Config.
func Compile(files []*File) (*Set, error) { return Config{}.Compile(files) }

// Compile type-checks and compiles every rule and message of files. Its
// error lists every problem, each naming file, line and column.
func (c Config) Compile(files []*File) (*Set, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	env, err := newEnv(c)
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	if len(files) == 0 {
		return nil, errors.New("policies: no policy files; with none, every module would be denied")
	}
	s := &Set{cfg: c, env: env}
	names := map[string]bool{}
	var errs []error
	for _, f := range files {
		if names[f.Name] {
			errs = append(errs, &Error{File: f.path, Err: fmt.Sprintf("a second file named %s", f.Name)})
			continue
		}
		names[f.Name] = true
		cf := &compiledFile{File: f, patterns: strings.Join(f.Modules, ",")}
		for i := range f.Rules {
			if len(errs) >= maxErrors {
				errs = append(errs, &Error{File: f.path, Err: "too many errors"})
				break
			}
			r := &f.Rules[i]
			cr, rerrs := s.compileRule(f, r)
			errs = append(errs, rerrs...)
			cf.rules = append(cf.rules, cr)
			s.usesTime = s.usesTime || cr.usesTime
		}
		s.files = append(s.files, cf)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Slice(s.files, func(i, j int) bool { return s.files[i].Name < s.files[j].Name })
	s.digest = digest(s.files)
	return s, nil
}

// newEnv declares the input (its Go structs, with their JSON field names),
// now, and the helpers.
func newEnv(c Config) (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.Types(cel.NativeTypeFor[Input](types.ParseStructTag("json"))),
		cel.Variable("input", cel.ObjectType("policies.Input")),
		cel.Variable("now", cel.TimestampType),
		cel.ParserExpressionSizeLimit(16 << 10),
		cel.ParserRecursionLimit(100),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
	}
	opts = append(opts, helpers()...)
	return cel.NewEnv(opts...)
}

// program compiles one CEL expression found in scalar s at offset off
// (a message may hold several), requiring its type be want (nil: any).
// With usesTime, it reports there whether the expression reads the time
// of evaluation (readsTime).
func (s *Set) program(f *File, r *Rule, src scalar, off int, text string, want *cel.Type, usesTime *bool) (cel.Program, []error) {
	at := func(loc common.Location) (int, int) {
		o := off + offsetOf(text, loc.Line(), loc.Column())
		return src.pos(o)
	}
	fail := func(line, col int, msg string) []error {
		return []error{&Error{File: f.path, Line: line, Col: col, Rule: r.Name, Err: msg}}
	}
	ast, iss := s.env.Compile(text)
	if iss != nil && iss.Err() != nil {
		var errs []error
		for _, e := range iss.Errors() {
			line, col := at(e.Location)
			errs = append(errs, fail(line, col, e.Message)...)
		}
		return nil, errs
	}
	if problems := lintConstants(ast); len(problems) > 0 {
		var errs []error
		for _, p := range problems {
			line, col := at(p.loc)
			errs = append(errs, fail(line, col, p.msg)...)
		}
		return nil, errs
	}
	if usesTime != nil {
		*usesTime = readsTime(ast)
	}
	line, col := src.pos(off)
	if want != nil && !ast.OutputType().IsExactType(want) {
		return nil, fail(line, col, fmt.Sprintf("expression is of type %s; a rule must be a bool, true when the rule is satisfied", cel.FormatCELType(ast.OutputType())))
	}
	est, err := s.env.EstimateCost(ast, estimator{limits: s.cfg.Limits})
	if err != nil {
		return nil, fail(line, col, fmt.Sprintf("estimating cost: %v", err))
	}
	if est.Max > s.cfg.MaxEstimatedCost {
		return nil, fail(line, col, fmt.Sprintf("worst-case cost %s exceeds the limit %d (on an input of %d dependencies, %d licenses each, strings of %d bytes): avoid nested loops over the input",
			costString(est.Max), s.cfg.MaxEstimatedCost, s.cfg.Limits.MaxList, s.cfg.Limits.MaxLicenses, s.cfg.Limits.MaxString))
	}
	prg, err := s.env.Program(ast,
		cel.CostLimit(s.cfg.CostLimit),
		cel.CostTrackerOptions(costTrackers()...),
		cel.InterruptCheckFrequency(64),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, fail(line, col, err.Error())
	}
	return prg, nil
}

func (s *Set) compileRule(f *File, r *Rule) (*compiledRule, []error) {
	cr := &compiledRule{Rule: r}
	prg, errs := s.program(f, r, r.expr, 0, r.Expr, cel.BoolType, &cr.usesTime)
	cr.prg = prg
	msg, merrs := s.compileMessage(f, r)
	cr.msg = msg
	return cr, append(errs, merrs...)
}

// readsTime reports whether a checked expression refers to the variable
// now or calls age (which measures from now): the only ways an expression
// can see the time it is evaluated at.
func readsTime(a *cel.Ast) bool {
	for _, ref := range a.NativeRep().ReferenceMap() {
		if ref.Name == "now" {
			return true
		}
		if slices.Contains(ref.OverloadIDs, ovAge) {
			return true
		}
	}
	return false
}

// UsesTime reports whether a rule of the set reads the time it is
// evaluated at (the variable now, or age()): only then can Evaluate decide
// differently on the same input at another time. Messages are not rules:
// they never change whether a module is allowed.
func (s *Set) UsesTime() bool { return s != nil && s.usesTime }

func costString(c uint64) string {
	if c == ^uint64(0) {
		return "unbounded"
	}
	return fmt.Sprint(c)
}

// Digest identifies the policy files of the set: "sha256:<hex>" of the
// lines "<sha256 hex of the file>  <file name>\n" in file-name order, which
// is what `sha256sum` prints, so
//
//	cd policies && sha256sum $(ls *.yaml *.yml 2>/dev/null | LC_ALL=C sort) | sha256sum
//
// reproduces it.
func (s *Set) Digest() string {
	if s == nil {
		return ""
	}
	return s.digest
}

func digest(files []*compiledFile) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%x  %s\n", sha256.Sum256(f.Data), f.Name)
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil))
}

// Files returns the names of the set's policy files, sorted.
func (s *Set) Files() []string {
	var names []string
	for _, f := range s.files {
		names = append(names, f.Name)
	}
	return names
}
