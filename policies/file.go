package policies

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds a policy file.
const MaxFileSize = 1 << 20

// Action is what a rule that is not satisfied does to the decision.
type Action string

const (
	// Deny rejects the module version. It is the default action.
	Deny Action = "deny"
	// Warn records the rule's message in the decision and admits anyway.
	Warn Action = "warn"
)

// File is one parsed policy file.
type File struct {
	// Name is the file's base name ("signers.yaml"); results and the digest
	// name files by it.
	Name string
	// Description says what the policy is for. Optional.
	Description string
	// Modules are the module path patterns (GOPRIVATE syntax, as
	// golang.org/x/mod/module.MatchPrefixPatterns reads them) whose versions
	// this file's rules apply to. At least one.
	Modules []string
	// Rules are the file's rules, in file order. At least one.
	Rules []Rule
	// Data is the file as read; Set.Digest hashes it.
	Data []byte

	path string // as given to Parse, for errors
}

// Rule is one rule of a policy file.
type Rule struct {
	// Name identifies the rule within its file: letters, digits, '.', '_'
	// and '-', starting with a letter or digit.
	Name string
	// Expr is a CEL expression of type bool that is true when the rule is
	// satisfied.
	Expr string
	// Message is shown when the rule is not satisfied. It may interpolate
	// CEL expressions: "{{input.module.path}} is not signed".
	Message string
	// Action is what an unsatisfied rule does: Deny (the default) or Warn.
	Action Action
	// Line and Col locate Expr in the file (1-based).
	Line, Col int

	expr, message scalar
}

var ruleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Parse parses a policy file. name is used in errors and, by its base name,
// in results. Parse is strict: unknown fields, duplicate keys, aliases,
// more than one YAML document, a file without modules or without rules, and
// duplicate rule names are errors that name the file, line and column.
// Expressions are checked by Compile, not here.
func Parse(name string, data []byte) (*File, error) {
	f := &File{Name: filepath.Base(name), Data: data, path: name}
	if len(data) > MaxFileSize {
		return nil, &Error{File: name, Err: fmt.Sprintf("file is %d bytes, over the limit of %d", len(data), MaxFileSize)}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, &Error{File: name, Line: 1, Col: 1, Err: "empty policy file"}
		}
		return nil, yamlError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		line := extra.Line
		if err != nil {
			return nil, yamlError(name, err)
		}
		return nil, &Error{File: name, Line: line, Col: 1, Err: "more than one YAML document; put one policy in each file"}
	}
	p := parser{file: name, lines: bytes.Split(data, []byte("\n"))}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	p.parseFile(f, root)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return f, nil
}

// parser collects every problem of one file, so that `policy check` reports
// them all at once.
type parser struct {
	file  string
	lines [][]byte
	errs  []error
}

// maxErrors bounds the errors reported for one file.
const maxErrors = 100

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	switch {
	case len(p.errs) > maxErrors:
		return
	case len(p.errs) == maxErrors:
		p.errs = append(p.errs, &Error{File: p.file, Err: "too many errors"})
		return
	}
	e := &Error{File: p.file, Err: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	p.errs = append(p.errs, e)
}

// fields checks that n is a mapping of known, unique keys and calls fn for
// each key and value.
func (p *parser) fields(n *yaml.Node, what string, known []string, fn func(key string, k, v *yaml.Node)) (present map[string]int, ok bool) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping, not %s", what, kindName(n))
		return nil, false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "%s: keys must be plain strings", what)
			continue
		}
		if line, dup := seen[k.Value]; dup {
			p.errorf(k, "%s: duplicate key %q (first at line %d)", what, k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		if !contains(known, k.Value) {
			p.errorf(k, "%s: unknown field %q (known: %s)", what, k.Value, strings.Join(known, ", "))
			continue
		}
		if v.Kind == yaml.AliasNode || v.Anchor != "" {
			p.errorf(v, "%s: anchors and aliases are not allowed in policy files", what)
			continue
		}
		fn(k.Value, k, v)
	}
	return seen, true
}

func (p *parser) parseFile(f *File, root *yaml.Node) {
	present, ok := p.fields(root, "policy file", []string{"description", "modules", "rules"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "description":
			if s, ok := p.str(v, "description"); ok {
				f.Description = s.value
			}
		case "modules":
			p.parseModules(f, v)
		case "rules":
			p.parseRules(f, v)
		}
	})
	if !ok {
		return
	}
	if _, ok := present["modules"]; !ok {
		p.errorf(root, "missing modules: a policy must say which module paths it applies to")
	}
	if _, ok := present["rules"]; !ok {
		p.errorf(root, "missing rules: a policy without rules would admit every module it covers")
	}
}

func (p *parser) parseModules(f *File, n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "modules must be a list of module path patterns, not %s", kindName(n))
		return
	}
	if len(n.Content) == 0 {
		p.errorf(n, "modules is empty: a policy must apply to at least one module path pattern")
	}
	for _, e := range n.Content {
		s, ok := p.str(e, "modules[]")
		if !ok {
			continue
		}
		if err := checkPattern(s.value); err != nil {
			p.errorf(e, "modules: %v", err)
			continue
		}
		f.Modules = append(f.Modules, s.value)
	}
}

func (p *parser) parseRules(f *File, n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "rules must be a list, not %s", kindName(n))
		return
	}
	if len(n.Content) == 0 {
		p.errorf(n, "rules is empty: a policy without rules would admit every module it covers")
	}
	names := map[string]int{}
	for i, rn := range n.Content {
		r := Rule{Action: Deny}
		var nameNode *yaml.Node
		what := fmt.Sprintf("rules[%d]", i)
		present, ok := p.fields(rn, what, []string{"name", "expr", "message", "action"}, func(key string, k, v *yaml.Node) {
			s, ok := p.str(v, what+"."+key)
			if !ok {
				return
			}
			switch key {
			case "name":
				nameNode = v
				r.Name = s.value
			case "expr":
				r.Expr, r.expr = s.value, s
				r.Line, r.Col = v.Line, v.Column
				if s.block {
					r.Line, r.Col = s.pos(0)
				}
			case "message":
				r.Message, r.message = s.value, s
			case "action":
				switch a := Action(s.value); a {
				case Deny, Warn:
					r.Action = a
				default:
					p.errorf(v, "%s.action: %q is not an action (deny, warn)", what, s.value)
				}
			}
		})
		if !ok {
			continue
		}
		_, hasName := present["name"]
		_, hasExpr := present["expr"]
		switch {
		case !hasName:
			p.errorf(rn, "%s: missing name", what)
		case nameNode == nil: // reported
		case !ruleNameRE.MatchString(r.Name):
			p.errorf(nameNode, "%s.name: %q is not a rule name (letters, digits, '.', '_', '-'; at most 128)", what, r.Name)
		default:
			if line, dup := names[r.Name]; dup {
				p.errorf(nameNode, "%s.name: duplicate rule name %q (first at line %d)", what, r.Name, line)
			}
			names[r.Name] = nameNode.Line
		}
		switch {
		case !hasExpr:
			p.errorf(rn, "%s: missing expr", what)
		case r.expr.lines != nil && strings.TrimSpace(r.Expr) == "":
			p.errorf(rn, "%s: empty expr", what)
		}
		f.Rules = append(f.Rules, r)
	}
}

// str returns the scalar n, which must not be null, a collection or an alias.
func (p *parser) str(n *yaml.Node, what string) (scalar, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		p.errorf(n, "%s must be a string, not %s", what, kindName(n))
		return scalar{}, false
	}
	return scalar{
		value: n.Value,
		line:  n.Line,
		col:   n.Column,
		block: n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0,
		lines: p.lines,
	}, true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!bool":
			return "a boolean"
		case "!!float":
			return "a number"
		}
		return "a scalar " + n.ShortTag()
	}
	return "empty"
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// typeNames turns the Go types yaml.v3 names into what the user wrote.
var typeNames = strings.NewReplacer(
	"in type policies.testFile", "in a test file",
	"in type policies.testCase", "in a test case",
	"into policies.testFile", "into a test file",
	"into policies.testCase", "into a test case",
)

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns a yaml.v3 syntax error into an *Error naming the file and
// line.
func yamlError(file string, err error) error {
	msg := err.Error()
	var errs []error
	for _, m := range strings.Split(strings.TrimPrefix(msg, "yaml: unmarshal errors:\n"), "\n") {
		m = strings.TrimSpace(m)
		if m == "" {
			continue
		}
		m = typeNames.Replace(m)
		e := &Error{File: file, Err: strings.TrimPrefix(m, "yaml: ")}
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			e.Line, _ = strconv.Atoi(sm[1])
			e.Err = sm[2]
		}
		errs = append(errs, e)
	}
	if len(errs) == 0 {
		return &Error{File: file, Err: msg}
	}
	return errors.Join(errs...)
}

// checkPattern reports a module path pattern that
// module.MatchPrefixPatterns would misread or silently never match.
func checkPattern(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty pattern")
	case strings.ContainsAny(p, ", \t\r\n"):
		return fmt.Errorf("pattern %q contains a comma or space; list patterns separately", p)
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/"):
		return fmt.Errorf("pattern %q begins or ends with a slash", p)
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == "" {
			return fmt.Errorf("pattern %q has an empty path element", p)
		}
		if _, err := path.Match(elem, ""); err != nil {
			return fmt.Errorf("pattern %q: malformed glob element %q", p, elem)
		}
	}
	return nil
}
