package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// A test file holds recorded or hand-written inputs and the decisions a
// policy set must reach on them; `modgate policy test` runs them in the CI
// of a policy repository. REFERENCE.md documents the format:
//
//	now: 2025-06-01T00:00:00Z            # what age() measures from; default: the wall clock
//	input_file: recorded/hello.json      # base input of every case: a recorded Input (JSON),
//	input:                               # with this merged over it (JSON field names)
//	  module: {path: corp.example/hello, version: v1.2.0}
//	cases:
//	  - name: release team signs
//	    input: {tag: {signer_group: release-team}}   # merged over the base (RFC 7386)
//	    allowed: true
//	  - name: recorded admission
//	    input_file: recorded/hello-v1.2.0.json       # an Input as JSON, relative to this file
//	    allowed: false
//	    results: {signers.yaml/release-team: deny, no-local-replace: pass}
type testFile struct {
	Now       *time.Time `yaml:"now"`
	InputFile string     `yaml:"input_file"`
	Input     yaml.Node  `yaml:"input"`
	Cases     []testCase `yaml:"cases"`
}

type testCase struct {
	Name      string     `yaml:"name"`
	Now       *time.Time `yaml:"now"`
	InputFile string     `yaml:"input_file"`
	Input     yaml.Node  `yaml:"input"`
	Allowed   *bool      `yaml:"allowed"`
	// Results maps "file/rule", or "rule" when only one file has it, to
	// the expected outcome: pass, deny, warn or error.
	Results map[string]Outcome `yaml:"results"`
}

// TestResult is the outcome of one test case.
type TestResult struct {
	File string // the test file
	Case string
	// Passed is true when the decision was as expected.
	Passed bool
	// Failures say what differed, one line each.
	Failures []string
	// Decision is what the set decided.
	Decision *Decision
}

// RunTests runs every case of every test file (*.yaml, *.yml; not
// recursive) in dir against set. A case fails when its decision differs
// from what it expects; RunTests returns an error only for a test file it
// cannot read, naming file and line.
func RunTests(set *Set, dir string) ([]TestResult, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	var results []TestResult
	var errs []error
	n := 0
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		n++
		rs, err := runTestFile(set, filepath.Join(dir, name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		results = append(results, rs...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if n == 0 {
		return nil, fmt.Errorf("policies: no test files (*.yaml, *.yml) in %s", dir)
	}
	return results, nil
}

func runTestFile(set *Set, file string) ([]TestResult, error) {
	data, err := readFile(file)
	if err != nil {
		return nil, &Error{File: file, Err: err.Error()}
	}
	var tf testFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		return nil, yamlError(file, err)
	}
	if len(tf.Cases) == 0 {
		return nil, &Error{File: file, Err: "no cases"}
	}
	dir := filepath.Dir(file)
	base, err := inputDoc(nil, tf.InputFile, &tf.Input, dir)
	if err != nil {
		return nil, &Error{File: file, Err: err.Error()}
	}
	var results []TestResult
	var errs []error
	names := map[string]bool{}
	for i, c := range tf.Cases {
		fail := func(msg string) {
			errs = append(errs, &Error{File: file, Err: fmt.Sprintf("cases[%d] (%s): %s", i, c.Name, msg)})
		}
		switch {
		case c.Name == "":
			fail("missing name")
			continue
		case names[c.Name]:
			fail("duplicate name")
			continue
		case c.Allowed == nil:
			fail("missing allowed: true or false")
			continue
		}
		names[c.Name] = true
		doc, err := inputDoc(base, c.InputFile, &c.Input, dir)
		if err != nil {
			fail(err.Error())
			continue
		}
		in, err := decodeInput(doc)
		if err != nil {
			fail(err.Error())
			continue
		}
		now := time.Now()
		switch {
		case c.Now != nil:
			now = *c.Now
		case tf.Now != nil:
			now = *tf.Now
		}
		d := set.Evaluate(context.Background(), in, now)
		r := TestResult{File: file, Case: c.Name, Decision: d}
		r.Failures = c.compare(set, d)
		r.Passed = len(r.Failures) == 0
		results = append(results, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return results, nil
}

// inputDoc is an input as encoding/json reads it: the recorded inputFile
// (a JSON Input, relative to dir), if any, with patch merged over it.
func inputDoc(base any, inputFile string, patch *yaml.Node, dir string) (any, error) {
	doc := base
	if doc == nil {
		doc = map[string]any{}
	}
	if inputFile != "" {
		p := inputFile
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		data, err := readFile(p)
		if err != nil {
			return nil, fmt.Errorf("input_file: %v", err)
		}
		var rec any
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, fmt.Errorf("input_file %s: %v", inputFile, err)
		}
		doc = rec
	}
	if patch.Kind != 0 {
		v, err := plain(patch)
		if err != nil {
			return nil, err
		}
		doc = mergePatch(doc, v)
	}
	return doc, nil
}

// decodeInput reads an input strictly: an unknown field is an error, not
// an empty value.
func decodeInput(doc any) (*Input, error) {
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("input: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var in Input
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("input: %v", err)
	}
	return &in, nil
}

// plain converts a YAML input to what encoding/json would have read from
// the same input as JSON. The Input has no numbers, so a scalar that YAML
// reads as a number is kept as its text: go: 1.20 is "1.20", not 1.2.
// Aliases are expanded, within a budget of nodes (a "billion laughs"
// document would otherwise expand without end).
func plain(n *yaml.Node) (any, error) {
	const maxInputNodes = 200_000
	budget := maxInputNodes
	var conv func(n *yaml.Node, depth int) any
	conv = func(n *yaml.Node, depth int) any {
		budget--
		if depth > 100 {
			budget = -1
		}
		if budget < 0 {
			return nil
		}
		switch n.Kind {
		case yaml.DocumentNode:
			if len(n.Content) == 1 {
				return conv(n.Content[0], depth+1)
			}
		case yaml.AliasNode:
			return conv(n.Alias, depth+1)
		case yaml.MappingNode:
			m := map[string]any{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				m[n.Content[i].Value] = conv(n.Content[i+1], depth+1)
			}
			return m
		case yaml.SequenceNode:
			l := []any{}
			for _, e := range n.Content {
				l = append(l, conv(e, depth+1))
			}
			return l
		case yaml.ScalarNode:
			switch n.ShortTag() {
			case "!!null":
				return nil
			case "!!bool":
				var b bool
				if n.Decode(&b) == nil {
					return b
				}
			}
			return n.Value
		}
		return nil
	}
	v := conv(n, 0)
	if budget < 0 {
		return nil, fmt.Errorf("input is too large or too deeply nested (aliases expand to over %d nodes)", maxInputNodes)
	}
	return v, nil
}

// mergePatch applies patch to doc as RFC 7386 JSON merge patch does:
// objects merge key by key, null deletes a key, anything else replaces.
func mergePatch(doc, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	d, ok := doc.(map[string]any)
	out := map[string]any{}
	if ok {
		for k, v := range d {
			out[k] = v
		}
	}
	for k, v := range p {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = mergePatch(out[k], v)
	}
	return out
}

// compare returns how d differs from what the case expects.
func (c *testCase) compare(set *Set, d *Decision) []string {
	var out []string
	if d.Allowed != *c.Allowed {
		out = append(out, fmt.Sprintf("allowed: got %v, want %v%s", d.Allowed, *c.Allowed, because(d)))
	}
	keys := make([]string, 0, len(c.Results))
	for k := range c.Results {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		want := c.Results[key]
		switch want {
		case Pass, Denied, Warned, Errored:
		default:
			out = append(out, fmt.Sprintf("results[%s]: %q is not an outcome (pass, deny, warn, error)", key, want))
			continue
		}
		file, rule, ok := strings.Cut(key, "/")
		if !ok {
			file, rule = "", key
		}
		var found []RuleResult
		for _, r := range d.Results {
			if r.Rule == rule && (file == "" || r.File == file) {
				found = append(found, r)
			}
		}
		switch {
		case len(found) == 0 && !set.hasRule(file, rule):
			out = append(out, fmt.Sprintf("results[%s]: no such rule in the policies", key))
		case len(found) == 0:
			out = append(out, fmt.Sprintf("results[%s]: got not applied (its file does not cover the module), want %s", key, want))
		case len(found) > 1:
			out = append(out, fmt.Sprintf("results[%s]: rule %s is in several files; name it file/rule", key, rule))
		case found[0].Result != want:
			msg := ""
			if found[0].Message != "" {
				msg = ": " + found[0].Message
			}
			out = append(out, fmt.Sprintf("results[%s]: got %s, want %s%s", key, found[0].Result, want, msg))
		}
	}
	return out
}

// because summarizes why a decision denied, for a failed test.
func because(d *Decision) string {
	if r := d.Reasons(); len(r) > 0 {
		return " (" + strings.Join(r, "; ") + ")"
	}
	return ""
}

func (s *Set) hasRule(file, rule string) bool {
	if s == nil {
		return false
	}
	for _, f := range s.files {
		if file != "" && f.Name != file {
			continue
		}
		for _, r := range f.rules {
			if r.Name == rule {
				return true
			}
		}
	}
	return false
}
