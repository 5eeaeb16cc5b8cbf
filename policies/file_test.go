package policies

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
	"gopkg.in/yaml.v3"
)

func TestParse(t *testing.T) {
	src := `description: >
  Two rules.
modules: [corp.example, "*.corp.example"]
rules:
  - name: one
    expr: input.module.prerelease == false
  - name: two
    action: warn
    message: "{{input.module.path}} warns"
    expr: |
      input.dependencies.size() < 100
`
	f, err := Parse("dir/p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "p.yaml" || f.Description != "Two rules.\n" || strings.Join(f.Modules, ",") != "corp.example,*.corp.example" || !bytes.Equal(f.Data, []byte(src)) {
		t.Errorf("file: %+v", f)
	}
	want := []Rule{
		{Name: "one", Expr: "input.module.prerelease == false", Action: Deny, Line: 6, Col: 11},
		{Name: "two", Expr: "input.dependencies.size() < 100\n", Message: "{{input.module.path}} warns", Action: Warn, Line: 11, Col: 7},
	}
	if len(f.Rules) != len(want) {
		t.Fatalf("%d rules", len(f.Rules))
	}
	for i, w := range want {
		r := f.Rules[i]
		if r.Name != w.Name || r.Expr != w.Expr || r.Message != w.Message || r.Action != w.Action || r.Line != w.Line || r.Col != w.Col {
			t.Errorf("rule %d: %+v, want %+v", i, r, w)
		}
	}
}

// TestScalarPos: an offset in a scalar's value maps back to its line and
// column in the file, for every scalar style. The value holds one "X"; its
// position is the position of the first "X" after "expr:" in the source.
func TestScalarPos(t *testing.T) {
	for _, src := range []string{
		"expr: a + X\n",
		"expr:   a + X # comment\n",
		"expr: 'a + ''b'' + X'\n",
		"expr: \"a + \\\"b\\\" + X\"\n",
		"expr: |\n  a +\n    b + X\n",
		"expr: |-\n\n  a +\n  b + X\n",
		"expr: >\n  a +\n  b +\n  c + X\n",
		"expr: >-\n    a + b\n    + X\n",
		"expr: a +\n  b + X\n",
		"expr: \"a +\n  b + X\"\n",
		"expr: \"é + X\"\n",
		"list:\n  - expr: >\n      a &&\n      X\n",
	} {
		p := parser{lines: bytes.Split([]byte(src), []byte("\n"))}
		root, err := parseNode(src)
		if err != nil {
			t.Fatal(err)
		}
		v := findKey(root, "expr")
		s, ok := p.str(v, "expr")
		if !ok {
			t.Fatalf("%q: not a scalar", src)
		}
		off := strings.IndexByte(s.value, 'X')
		line, col := s.pos(off)
		lines := strings.Split(src, "\n")
		wantLine, wantCol := 0, 0
		for i := v.Line - 1; i < len(lines); i++ {
			if c := strings.IndexByte(lines[i], 'X'); c >= 0 {
				wantLine, wantCol = i+1, len([]rune(lines[i][:c]))+1
				break
			}
		}
		if line != wantLine || col != wantCol {
			t.Errorf("%q: X at %d:%d, want %d:%d", src, line, col, wantLine, wantCol)
		}
		// Offsets past the end stay on the last line of the value.
		if line, _ := s.pos(len(s.value) + 5); line > wantLine+1 || line < v.Line {
			t.Errorf("%q: end at line %d", src, line)
		}
	}
}

// FuzzParse: no policy file makes Parse or Compile panic; what Parse
// accepts has modules and rules with valid, unique names, and every error
// is located in the file.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("examples/*.yaml")
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	archives, _ := filepath.Glob("testdata/check/*.txtar")
	for _, p := range archives {
		ar, err := txtar.ParseFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range ar.Files {
			if file.Name != "want" {
				f.Add(file.Data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("p.yaml", data)
		if err != nil {
			checkErrors(t, err, data)
			return
		}
		if len(file.Modules) == 0 || len(file.Rules) == 0 {
			t.Fatalf("accepted a file without modules or rules: %+v", file)
		}
		names := map[string]bool{}
		for _, r := range file.Rules {
			if !ruleNameRE.MatchString(r.Name) || names[r.Name] || (r.Action != Deny && r.Action != Warn) {
				t.Fatalf("accepted rule %+v", r)
			}
			names[r.Name] = true
		}
		if _, err := Compile([]*File{file}); err != nil {
			checkErrors(t, err, data)
		}
	})
}

func checkErrors(t *testing.T, err error, data []byte) {
	errs := Errors(err)
	if len(errs) == 0 {
		t.Fatalf("error without location: %v", err)
	}
	lines := bytes.Count(data, []byte("\n")) + 2
	for _, e := range errs {
		if e.File != "p.yaml" || e.Line < 0 || e.Line > lines || e.Col < 0 || e.Err == "" {
			t.Fatalf("badly located error %+v in %d lines", e, lines)
		}
	}
}

func parseNode(src string) (*yaml.Node, error) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// findKey returns the value of the first mapping key named key.
func findKey(n *yaml.Node, key string) *yaml.Node {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
	}
	for _, c := range n.Content {
		if v := findKey(c, key); v != nil {
			return v
		}
	}
	return nil
}
